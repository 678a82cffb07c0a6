package b2bua

import (
	"fmt"
	"strconv"
	"strings"
)

// PeerKind says how a Telegram peer is named.
type PeerKind int

// Peer kinds.
const (
	// PeerPhone is a phone number in E.164 with a leading '+'
	// (contacts.resolvePhone).
	PeerPhone PeerKind = iota + 1
	// PeerUsername is a public username without the '@'
	// (contacts.resolveUsername).
	PeerUsername
	// PeerID is a numeric Telegram user id (needs a cached access hash).
	PeerID
)

func (k PeerKind) String() string {
	switch k {
	case PeerPhone:
		return "phone"
	case PeerUsername:
		return "username"
	case PeerID:
		return "id"
	}
	return "invalid"
}

// Peer is a Telegram user to call, as routing found it.
type Peer struct {
	Kind PeerKind
	// Value is "+4930123456" for a phone, "name" for a username (no '@'),
	// the decimal id for an id.
	Value string
}

// String is the peer as written in the configuration: "+4930123456",
// "@name" or "id:123".
func (p Peer) String() string {
	switch p.Kind {
	case PeerUsername:
		return "@" + p.Value
	case PeerID:
		return "id:" + p.Value
	}
	return p.Value
}

// ID is the numeric user id of a PeerID.
func (p Peer) ID() (int64, bool) {
	if p.Kind != PeerID {
		return 0, false
	}
	n, err := strconv.ParseInt(p.Value, 10, 64)
	return n, err == nil
}

// ParsePeer reads a peer written as "+E.164", "@username" or "id:NUMBER".
// Numbers in other forms go through a NumberPlan first.
func ParsePeer(s string) (Peer, error) {
	switch {
	case strings.HasPrefix(s, "+"):
		if !isE164(s) {
			return Peer{}, fmt.Errorf("%w: %q is not +E.164 (a '+' and 4 to 15 digits, the first not 0)", ErrInvalidNumber, s)
		}
		return Peer{Kind: PeerPhone, Value: s}, nil
	case strings.HasPrefix(s, "@"):
		u := s[1:]
		if !validUsername(u) {
			return Peer{}, fmt.Errorf("%w: %q is not a Telegram username (4 to 32 letters, digits or '_', starting with a letter)", ErrInvalidNumber, s)
		}
		return Peer{Kind: PeerUsername, Value: u}, nil
	case strings.HasPrefix(s, "id:"):
		n, err := strconv.ParseInt(s[3:], 10, 64)
		if err != nil || n <= 0 {
			return Peer{}, fmt.Errorf("%w: %q is not a Telegram user id", ErrInvalidNumber, s)
		}
		return Peer{Kind: PeerID, Value: strconv.FormatInt(n, 10)}, nil
	}
	return Peer{}, fmt.Errorf("%w: %q: write a Telegram peer as +E.164, @username or id:NUMBER", ErrInvalidNumber, s)
}

// isE164 reports "+" followed by 4..15 digits, the first not 0 (ITU-T E.164
// §6: at most 15 digits; country codes never start with 0).
func isE164(s string) bool {
	if len(s) < 5 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validUsername follows Telegram's username rules (tdlib
// is_allowed_username: letters, digits and '_', starting with a letter, no
// trailing '_'); 4 characters are allowed for collectible usernames.
func validUsername(u string) bool {
	if len(u) < 4 || len(u) > 32 || u[len(u)-1] == '_' {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}
