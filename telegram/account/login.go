package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/auth/qrlogin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Prompter asks the operator for what a login needs. `tgsip login`
// implements it on the terminal (or a pipe); tests script it.
type Prompter interface {
	// Code asks for the login code Telegram sent (to the account's other
	// devices, or by SMS).
	Code(ctx context.Context, sent *tg.AuthSentCode) (string, error)
	// Password asks for the two-step verification password. hint is the
	// account's password hint, possibly empty.
	Password(ctx context.Context, hint string) (string, error)
	// ShowQR shows a tg://login?token=… URL to scan with a logged-in
	// Telegram app (Settings → Devices → Link Desktop Device) before
	// expires; it is called again with a new URL when one expires.
	ShowQR(ctx context.Context, url string, expires time.Time) error
	// Notice tells the operator what went wrong and what happens next.
	Notice(msg string)
}

// LoginMethod is how `tgsip login` signs an account in.
type LoginMethod int

const (
	// LoginCode sends a code to the phone number and asks for it.
	LoginCode LoginMethod = iota
	// LoginQR shows a QR code that a logged-in app scans.
	LoginQR
)

// ErrLoginAborted: the operator gave up (too many wrong codes or
// passwords).
var ErrLoginAborted = errors.New("login aborted")

// ErrWrongAccount: the login signed in another account than the configured
// phone number's.
var ErrWrongAccount = errors.New("wrong account")

func normalizeDigits(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// LoginOptions tune Login.
type LoginOptions struct {
	// Logger receives progress logs (never codes or passwords).
	Logger *slog.Logger
	// Device is what Telegram shows in the account's session list.
	Device telegram.DeviceConfig
	// Attempts is how many wrong codes or passwords are allowed. Default 3.
	Attempts int
}

// Login signs the account in and writes its session file. It reuses a
// session that is still logged in (and returns its user), refuses a corrupt
// session file (ErrSessionCorrupt: it is not overwritten), and otherwise
// signs in on a fresh session kept in memory, writing the file only once
// Telegram has accepted the login — so a failed login leaves any old file
// as it was. Errors read well through Explain.
func Login(ctx context.Context, cfg Config, method LoginMethod, p Prompter, opts LoginOptions) (*tg.User, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Device.DeviceModel == "" {
		opts.Device = telegram.DeviceConfig{DeviceModel: "tgsip", AppVersion: "tgsip"}
	}
	if method == LoginCode && cfg.Phone == "" {
		return nil, fmt.Errorf("account %q: phone is required for a login by code (or use the QR code)", cfg.Name)
	}
	base, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	base.Device = opts.Device
	store := NewSessionFile(cfg.SessionFile)
	if ok, err := store.Exists(); err != nil {
		return nil, err
	} else if ok {
		if _, err := store.LoadSession(ctx); err != nil {
			return nil, err
		}
		u, err := loggedInAs(ctx, cfg, base, store)
		if err != nil || u != nil {
			return u, err
		}
		opts.Logger.Info("session is not logged in; starting a new one", "account", cfg.Name)
	}

	mem := newMemSession()
	disp := tg.NewUpdateDispatcher()
	loggedIn := qrlogin.OnLoginToken(disp)
	o := base
	o.SessionStorage = mem
	o.UpdateHandler = disp
	c := telegram.NewClient(cfg.APIID, cfg.APIHash, o)
	var self *tg.User
	err = c.Run(ctx, func(ctx context.Context) error {
		var err error
		switch method {
		case LoginQR:
			err = loginQR(ctx, c, loggedIn, p)
		default:
			err = loginCode(ctx, c, cfg.Phone, p, opts.Attempts)
		}
		if errors.Is(err, auth.ErrPasswordAuthNeeded) {
			err = loginPassword(ctx, c, p, opts.Attempts)
		}
		if err != nil {
			return err
		}
		if self, err = c.Self(ctx); err != nil {
			return fmt.Errorf("get self: %w", err)
		}
		// A QR code logs in whichever account scans it: keep a session
		// only for the number the config names.
		if cfg.Phone != "" && normalizeDigits(cfg.Phone) != normalizeDigits(self.Phone) {
			// Best effort: end the unwanted session so that it does not
			// linger in that account's device list; the error below is
			// what the operator must see either way.
			_, _ = c.API().AuthLogOut(ctx)
			return fmt.Errorf("%w: the scan logged in +%s, but account %q is configured with phone %s; session not saved",
				ErrWrongAccount, self.Phone, cfg.Name, cfg.Phone)
		}
		data, err := mem.wait(ctx)
		if err != nil {
			return fmt.Errorf("session: %w", err)
		}
		return store.StoreSession(ctx, data)
	})
	if err != nil {
		return nil, err
	}
	opts.Logger.Info("logged in", "account", cfg.Name, "user_id", self.ID)
	return self, nil
}

// loggedInAs returns the user of a session that is still logged in, nil if
// Telegram no longer knows it.
func loggedInAs(ctx context.Context, cfg Config, base telegram.Options, store *SessionFile) (*tg.User, error) {
	o := base
	o.SessionStorage = store
	c := telegram.NewClient(cfg.APIID, cfg.APIHash, o)
	var self *tg.User
	err := c.Run(ctx, func(ctx context.Context) error {
		st, err := c.Auth().Status(ctx)
		if err != nil {
			return err
		}
		if st.Authorized {
			self = st.User
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return self, nil
}

func loginCode(ctx context.Context, c *telegram.Client, phone string, p Prompter, attempts int) error {
	send := func() (*tg.AuthSentCode, error) {
		sent, err := c.Auth().SendCode(ctx, phone, auth.SendCodeOptions{})
		if err != nil {
			return nil, err
		}
		switch s := sent.(type) {
		case *tg.AuthSentCode:
			return s, nil
		case *tg.AuthSentCodeSuccess:
			return nil, nil // signed in already (future auth token)
		}
		return nil, fmt.Errorf("send code: unexpected %T", sent)
	}
	sent, err := send()
	if err != nil || sent == nil {
		return err
	}
	resent := false
	for wrong := 0; ; {
		code, err := p.Code(ctx, sent)
		if err != nil {
			return err
		}
		_, err = c.Auth().SignIn(ctx, phone, code, sent.PhoneCodeHash)
		switch {
		case err == nil, errors.Is(err, auth.ErrPasswordAuthNeeded):
			return err
		case tgerr.Is(err, "PHONE_CODE_INVALID", "PHONE_CODE_EMPTY"):
			if wrong++; wrong >= attempts {
				return fmt.Errorf("%w after %d wrong codes: %w", ErrLoginAborted, wrong, err)
			}
			p.Notice(Explain(err))
		case tgerr.Is(err, "PHONE_CODE_EXPIRED") && !resent:
			resent = true
			p.Notice(Explain(err) + "; sending a new one")
			if sent, err = send(); err != nil || sent == nil {
				return err
			}
		default:
			return err
		}
	}
}

func loginPassword(ctx context.Context, c *telegram.Client, p Prompter, attempts int) error {
	hint := ""
	if pw, err := c.API().AccountGetPassword(ctx); err == nil {
		hint = pw.Hint
	}
	for wrong := 0; ; {
		password, err := p.Password(ctx, hint)
		if err != nil {
			return err
		}
		_, err = c.Auth().Password(ctx, password)
		if !errors.Is(err, auth.ErrPasswordInvalid) {
			return err
		}
		if wrong++; wrong >= attempts {
			return fmt.Errorf("%w after %d wrong passwords: %w", ErrLoginAborted, wrong, err)
		}
		p.Notice(Explain(err))
	}
}

// loginQR runs core.telegram.org/api/qr-login: export a token, show it,
// export again when it expires, and finish when updateLoginToken says a
// logged-in app accepted it. A 2FA account answers SESSION_PASSWORD_NEEDED,
// returned as auth.ErrPasswordAuthNeeded.
func loginQR(ctx context.Context, c *telegram.Client, loggedIn qrlogin.LoggedIn, p Prompter) error {
	_, err := c.QR().Auth(ctx, loggedIn, func(ctx context.Context, t qrlogin.Token) error {
		return p.ShowQR(ctx, t.URL(), t.Expires())
	})
	if tgerr.Is(err, "SESSION_PASSWORD_NEEDED") {
		return auth.ErrPasswordAuthNeeded
	}
	return err
}

// Check connects with the account's session file and returns the user it
// is logged in as: an error wrapping ErrNeedsLogin when there is no session
// or Telegram no longer knows it, ErrSessionCorrupt for an unusable file.
// It writes nothing but what gotd refreshes in a valid session.
func Check(ctx context.Context, cfg Config) (*tg.User, error) {
	base, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	store := NewSessionFile(cfg.SessionFile)
	if ok, err := store.Exists(); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: no session file %s", ErrNeedsLogin, cfg.SessionFile)
	}
	if _, err := store.LoadSession(ctx); err != nil {
		return nil, err
	}
	u, err := loggedInAs(ctx, cfg, base, store)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, fmt.Errorf("%w: Telegram no longer knows the session in %s", ErrNeedsLogin, cfg.SessionFile)
	}
	return u, nil
}

// memSession keeps a login's session in memory until Telegram accepted the
// login. gotd signals the client ready before it stores the session
// (telegram/session.go onSession), so wait tells when the first store
// has happened.
type memSession struct {
	mu     sync.Mutex
	data   []byte
	stored chan struct{}
}

func newMemSession() *memSession { return &memSession{stored: make(chan struct{})} }

func (m *memSession) LoadSession(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil, session.ErrNotFound
	}
	return append([]byte(nil), m.data...), nil
}

func (m *memSession) StoreSession(_ context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		close(m.stored)
	}
	m.data = append([]byte(nil), data...)
	return nil
}

// wait returns the session once gotd has stored it.
func (m *memSession) wait(ctx context.Context) ([]byte, error) {
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-m.stored:
		return m.LoadSession(ctx)
	case <-t.C:
		return nil, errors.New("the client did not store its session")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
