package account

import (
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tgerr"
)

// Peer-resolution outcomes a caller maps to SIP statuses (the b2bua's one
// table turns the first three into 404).
var (
	// ErrNotTelegramUser: no Telegram account has this phone number (or
	// its owner lets nobody find it).
	ErrNotTelegramUser = errors.New("not a Telegram user")
	// ErrUnknownUsername: no Telegram account has this username.
	ErrUnknownUsername = errors.New("unknown username")
	// ErrUnknownPeer: a numeric user id this account has never seen, so it
	// has no access hash to reach it with.
	ErrUnknownPeer = errors.New("user id not known to this account")
	// ErrBadTarget: the target is neither +E.164, @username nor a user id.
	ErrBadTarget = errors.New("not a phone number, username or user id")
)

// ErrNeedsLogin: the account has no session, or Telegram ended it (logged
// out from another device, revoked, or the account was deleted); run
// `tgsip login`.
var ErrNeedsLogin = errors.New("account needs login")

// FloodWaitError is Telegram asking the account to slow down: FLOOD_WAIT_n
// (retry after n seconds) or PEER_FLOOD (the account may not contact new
// people for a while; Telegram gives no duration, so the account's
// configured back-off applies).
type FloodWaitError struct {
	// PeerFlood is set for PEER_FLOOD.
	PeerFlood bool
	// Wait is how long to wait; Until is when the wait ends.
	Wait  time.Duration
	Until time.Time
	// Err is the RPC error.
	Err error
}

func (e *FloodWaitError) Error() string {
	if e.PeerFlood {
		return fmt.Sprintf("PEER_FLOOD: account limited, backing off for %v", e.Wait)
	}
	return fmt.Sprintf("FLOOD_WAIT: retry after %v", e.Wait)
}

func (e *FloodWaitError) Unwrap() error { return e.Err }

// RetryAfter is the time left to wait (at least one second while waiting).
func (e *FloodWaitError) RetryAfter(now time.Time) time.Duration {
	d := e.Until.Sub(now).Round(time.Second)
	if d < time.Second {
		d = time.Second
	}
	return d
}

// authMessages explains each login and session error to an operator; one
// row per Telegram error type (core.telegram.org/method/auth.signIn,
// auth.sendCode, auth.checkPassword, api/qr-login and api/errors §401).
var authMessages = []struct {
	types []string
	msg   string
}{
	{[]string{"PHONE_CODE_INVALID"}, "the login code is wrong: type the code Telegram sent again"},
	{[]string{"PHONE_CODE_EMPTY"}, "no login code was entered"},
	{[]string{"PHONE_CODE_EXPIRED"}, "the login code has expired: a new code is needed"},
	{[]string{"SESSION_PASSWORD_NEEDED"}, "this account has two-step verification: its cloud password is needed"},
	{[]string{"PASSWORD_HASH_INVALID"}, "the two-step verification password is wrong"},
	{[]string{"PHONE_NUMBER_BANNED", "USER_DEACTIVATED_BAN"}, "Telegram has banned this phone number; it cannot be used"},
	{[]string{"PHONE_NUMBER_INVALID"}, "Telegram does not accept this phone number: use the international format, +country code and number"},
	{[]string{"PHONE_NUMBER_UNOCCUPIED"}, "no Telegram account uses this phone number: create the account in an official Telegram app first"},
	{[]string{"PHONE_PASSWORD_FLOOD"}, "too many wrong passwords: Telegram blocks further attempts for a while"},
	{[]string{"AUTH_KEY_UNREGISTERED", "SESSION_REVOKED", "SESSION_EXPIRED", "AUTH_KEY_INVALID", "AUTH_KEY_PERM_EMPTY", "USER_DEACTIVATED"},
		"the session was ended elsewhere (logged out or terminated from another device, or the account was deleted): log in again with tgsip login"},
	{[]string{"AUTH_KEY_DUPLICATED"}, "the same session was used from two places at once and Telegram revoked it: log in again with tgsip login, and never copy a session file to a second server"},
	{[]string{"AUTH_TOKEN_EXPIRED"}, "the QR code expired before it was scanned"},
	{[]string{"AUTH_TOKEN_INVALID", "AUTH_TOKEN_ALREADY_ACCEPTED"}, "the QR code is no longer valid"},
	{[]string{"API_ID_INVALID", "API_ID_PUBLISHED_FLOOD"}, "Telegram rejected api_id/api_hash: use the values of your application at my.telegram.org"},
}

// Explain turns a login or session error into one sentence for the
// operator. Errors it does not know keep their own text.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	var fw *FloodWaitError
	if errors.As(err, &fw) {
		if fw.PeerFlood {
			return fmt.Sprintf("Telegram limits this account (PEER_FLOOD): it may not contact new people until %s", fw.Until.Format(time.RFC3339))
		}
		return fmt.Sprintf("too many attempts: Telegram asks to wait %v (until %s) before trying again", fw.Wait, fw.Until.Format(time.RFC3339))
	}
	if d, ok := tgerr.AsFloodWait(err); ok {
		return fmt.Sprintf("too many attempts: Telegram asks to wait %v before trying again", d)
	}
	switch {
	case errors.Is(err, ErrSessionCorrupt), errors.Is(err, ErrNeedsLogin):
		return err.Error()
	case errors.Is(err, auth.ErrPasswordInvalid):
		return explainType("PASSWORD_HASH_INVALID")
	case errors.Is(err, auth.ErrPasswordAuthNeeded):
		return explainType("SESSION_PASSWORD_NEEDED")
	}
	if rpc, ok := tgerr.As(err); ok {
		if msg := explainType(rpc.Type); msg != "" {
			return msg
		}
		return fmt.Sprintf("Telegram answered %d %s", rpc.Code, rpc.Type)
	}
	return err.Error()
}

func explainType(t string) string {
	for _, row := range authMessages {
		for _, x := range row.types {
			if x == t {
				return row.msg
			}
		}
	}
	return ""
}

// isSessionEnded reports whether err means the session is gone for good
// (every 401 but SESSION_PASSWORD_NEEDED, api/errors §401).
func isSessionEnded(err error) bool {
	rpc, ok := tgerr.As(err)
	return ok && rpc.Code == 401 && rpc.Type != "SESSION_PASSWORD_NEEDED"
}
