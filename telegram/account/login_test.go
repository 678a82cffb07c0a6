package account

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/telegram/auth/qrlogin"
	"github.com/gotd/td/tgerr"
)

// TestLoginCodeRestartResolve logs in by code (a wrong code first), then
// restarts the account from its session file alone and resolves peers.
func TestLoginCodeRestartResolve(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Trunk")
	p := &script{codes: []string{"99999", "12345"}}
	self, err := Login(ctx, cfg, LoginCode, p, LoginOptions{Logger: testLogger()})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if self.ID != users["Trunk"].ID {
		t.Errorf("logged in as %d", self.ID)
	}
	if !strings.Contains(p.told(), "login code is wrong") {
		t.Errorf("wrong code not explained; told %q", p.told())
	}
	st, err := os.Stat(cfg.SessionFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %04o", st.Mode().Perm())
	}

	// A second login finds the session logged in and asks nothing.
	again := &script{}
	if self, err := Login(ctx, cfg, LoginCode, again, LoginOptions{Logger: testLogger()}); err != nil || self.ID != users["Trunk"].ID || again.asked != 0 {
		t.Errorf("second login: %v %v, asked %d", self, err, again.asked)
	}

	// Restart: a new Account from the same file is online without a code.
	acc := start(t, cfg)
	if s := acc.Status(); s.UserID != users["Trunk"].ID || s.InCall || s.String() != "online" {
		t.Errorf("status %+v %q", s, s)
	}
	if err := acc.Available(); err != nil {
		t.Errorf("available: %v", err)
	}

	callee, hidden := users["Callee"], users["Hidden"]
	for _, tc := range []struct {
		target string
		want   int64
		err    error
	}{
		{"@callee", callee.ID, nil},
		{"@CALLEE", callee.ID, nil},
		{"+15550201", callee.ID, nil},
		{"+15550202", hidden.ID, nil}, // hidden from resolvePhone: found by import
		{"+15559999", 0, ErrNotTelegramUser},
		{"@nosuchuser", 0, ErrUnknownUsername},
		{"123456789", 0, ErrUnknownPeer},
		{"15550201", 0, ErrUnknownPeer},
		{"+1", 0, ErrBadTarget},
		{"alice", 0, ErrBadTarget},
		{"@", 0, ErrBadTarget},
	} {
		p, err := acc.Resolve(ctx, tc.target)
		if !errors.Is(err, tc.err) || p.ID != tc.want {
			t.Errorf("resolve %q: %+v %v, want id %d err %v", tc.target, p, err, tc.want, tc.err)
			continue
		}
		if err == nil {
			u, _ := network.User(p.ID)
			if p.AccessHash != u.AccessHash {
				t.Errorf("resolve %q: access hash %d, want %d", tc.target, p.AccessHash, u.AccessHash)
			}
		}
	}
	// Resolved users are callable by id now.
	byID, err := acc.Resolve(ctx, "  "+strconv.FormatInt(callee.ID, 10))
	if err != nil || byID.AccessHash != callee.AccessHash || byID.Username != "callee" {
		t.Errorf("by id: %+v %v", byID, err)
	}
	if k, ok := acc.Known(hidden.ID); !ok || k.FirstName != "Hidden" || k.DisplayName() != "Hidden" {
		t.Errorf("known %+v %v", k, ok)
	}
	if _, ok := acc.Known(users["Stranger"].ID); ok {
		t.Error("a user never met is known")
	}
	if _, err := acc.API().UsersGetUsers(ctx, nil); err != nil {
		t.Errorf("API through the account: %v", err)
	}
}

func TestLogin2FA(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Secure")
	p := &script{codes: []string{"12345"}, passwords: []string{"wrong", "correct horse"}}
	self, err := Login(ctx, cfg, LoginCode, p, LoginOptions{Logger: testLogger()})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if self.ID != users["Secure"].ID {
		t.Errorf("self %d", self.ID)
	}
	if !strings.Contains(p.told(), "password is wrong") {
		t.Errorf("told %q", p.told())
	}
}

// TestLoginQR: the QR shown by Login is accepted by a logged-in device
// of the same account (here a running Account).
func TestLoginQR(t *testing.T) {
	ctx := slowCtx(t)
	first := testConfig(t, "Trunk")
	if _, err := Login(ctx, first, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	phone := start(t, first)
	second := testConfig(t, "Trunk")
	second.Phone = "" // a QR login needs no number
	shown := 0
	p := &script{qr: func(ctx context.Context, url string) error {
		shown++
		tok, err := qrlogin.ParseTokenURL(url)
		if err != nil {
			return err
		}
		_, err = qrlogin.AcceptQR(ctx, phone.API(), tok)
		return err
	}}
	self, err := Login(ctx, second, LoginQR, p, LoginOptions{Logger: testLogger()})
	if err != nil {
		t.Fatalf("QR login: %v", err)
	}
	if self.ID != users["Trunk"].ID || shown != 1 {
		t.Errorf("self %d, QR shown %d times", self.ID, shown)
	}
	if _, err := Login(ctx, second, LoginQR, &script{}, LoginOptions{}); err != nil {
		t.Errorf("session from QR login not reusable: %v", err)
	}

	// The code scanned by another account than the configured one.
	third := testConfig(t, "Callee")
	p.qr = func(ctx context.Context, url string) error {
		tok, err := qrlogin.ParseTokenURL(url)
		if err != nil {
			return err
		}
		_, err = qrlogin.AcceptQR(ctx, phone.API(), tok)
		return err
	}
	if _, err := Login(ctx, third, LoginQR, p, LoginOptions{Logger: testLogger()}); !errors.Is(err, ErrWrongAccount) {
		t.Errorf("QR scanned by the wrong account: %v", err)
	}
	if _, err := os.Stat(third.SessionFile); !os.IsNotExist(err) {
		t.Errorf("session saved for the wrong account: %v", err)
	}
}

// TestLoginErrors: each refusal of Telegram reaches the operator as a
// sentence, and a failed login writes no session file.
func TestLoginErrors(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Limited")
	for _, tc := range []struct {
		method string
		err    *tgerr.Error
		want   string
	}{
		{"auth.sendCode", tgerr.New(420, "FLOOD_WAIT_30"), "wait 30s"},
		{"auth.sendCode", tgerr.New(400, "PHONE_NUMBER_BANNED"), "banned"},
		{"auth.signIn", tgerr.New(400, "PHONE_CODE_EXPIRED"), "expired"},
	} {
		network.Faults().FailNext(tc.method, tc.err)
		if tc.method == "auth.signIn" {
			// An expired code is re-sent once; the second expiry ends it.
			network.Faults().FailNext(tc.method, tc.err)
		}
		_, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345", "12345"}}, LoginOptions{Logger: testLogger()})
		if err == nil || !strings.Contains(Explain(err), tc.want) {
			t.Errorf("%s failing with %s: %v (%q)", tc.method, tc.err.Type, err, Explain(err))
		}
		if _, err := os.Stat(cfg.SessionFile); !os.IsNotExist(err) {
			t.Errorf("%s: session file after a failed login: %v", tc.err.Type, err)
		}
	}
	p := &script{codes: []string{"1", "2", "3"}}
	if _, err := Login(ctx, cfg, LoginCode, p, LoginOptions{Logger: testLogger()}); !errors.Is(err, ErrLoginAborted) || !tgerr.Is(err, "PHONE_CODE_INVALID") {
		t.Errorf("three wrong codes: %v", err)
	}
}

// TestSessionRevoked: Telegram ending the session stops the account with
// ErrNeedsLogin instead of reconnecting forever.
func TestSessionRevoked(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Revoked")
	if _, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	acc := start(t, cfg)
	// Logging out from "another device" is what the emulator sees as the
	// key losing its user; the next request gets AUTH_KEY_UNREGISTERED.
	// The logout's answer may be lost: the account can see its session
	// end (AUTH_KEY_UNREGISTERED on a background request) and close its
	// client before the answer arrives ("client closed"). What follows
	// checks the outcome either way.
	if _, err := acc.API().AuthLogOut(ctx); err != nil {
		t.Logf("logout: %v", err)
	}
	if _, err := acc.Resolve(ctx, "@callee"); err == nil {
		t.Fatal("resolve after logout succeeded")
	}
	select {
	case err := <-acc.done:
		acc.done <- err
		if !errors.Is(err, ErrNeedsLogin) || !strings.Contains(Explain(err), "ended elsewhere") {
			t.Errorf("run ended with %v (%q)", err, Explain(err))
		}
	case <-time.After(time.Minute):
		t.Fatal("account still running after its session ended")
	}
	if s := acc.Status(); s.State != StateNeedsLogin || s.String() != "needs login" {
		t.Errorf("status %v", s)
	}
	if !errors.Is(acc.Available(), ErrNeedsLogin) {
		t.Errorf("available: %v", acc.Available())
	}
}
