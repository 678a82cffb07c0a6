package emu

import (
	"errors"
	"testing"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// TestQRLogin: a new device exports a token, a logged-in device of the
// same account accepts it, the new device hears updateLoginToken and is
// signed in by its next export; a 2FA account still needs its password.
func TestQRLogin(t *testing.T) {
	n := shnet(t)
	alice := loggedIn(t, "alice")
	fresh, err := startClient(n.ClientOptions(), "qr")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.close()
	ctx := ctxT(t)

	if _, err := alice.api.AuthAcceptLoginToken(ctx, []byte("no such token")); !tgerr.Is(err, "AUTH_TOKEN_INVALID") {
		t.Errorf("unknown token: %v", err)
	}
	if _, err := fresh.api.AuthAcceptLoginToken(ctx, []byte("x")); !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
		t.Errorf("accept while logged out: %v", err)
	}

	exported := func(c *tclient) *tg.AuthLoginToken {
		t.Helper()
		res, err := c.api.AuthExportLoginToken(ctx, &tg.AuthExportLoginTokenRequest{APIID: 1, APIHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		tok, ok := res.(*tg.AuthLoginToken)
		if !ok || len(tok.Token) == 0 || tok.Expires == 0 {
			t.Fatalf("export gave %T %+v", res, res)
		}
		return tok
	}
	first := exported(fresh)
	tok := exported(fresh) // a new export replaces the first token
	if _, err := alice.api.AuthAcceptLoginToken(ctx, first.Token); !tgerr.Is(err, "AUTH_TOKEN_INVALID") {
		t.Errorf("replaced token: %v", err)
	}
	if _, err := fresh.api.AuthImportLoginToken(ctx, tok.Token); err != nil {
		t.Errorf("import before accept: %v", err)
	}
	authz, err := alice.api.AuthAcceptLoginToken(ctx, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if authz.DateCreated == 0 {
		t.Errorf("authorization %+v", authz)
	}
	fresh.waitUpdate(t, "updateLoginToken", func(u tg.UpdateClass) bool {
		_, ok := u.(*tg.UpdateLoginToken)
		return ok
	})
	res, err := fresh.api.AuthExportLoginToken(ctx, &tg.AuthExportLoginTokenRequest{APIID: 1, APIHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ok, _ := res.(*tg.AuthLoginTokenSuccess)
	if ok == nil {
		t.Fatalf("export after accept gave %T", res)
	}
	if u := ok.Authorization.(*tg.AuthAuthorization).User.(*tg.User); u.ID != alice.self.ID {
		t.Errorf("signed in as %d, want %d", u.ID, alice.self.ID)
	}
	self, err := fresh.client.Self(ctx)
	if err != nil || self.ID != alice.self.ID {
		t.Errorf("self after QR login: %v %v", self, err)
	}
	if _, err := alice.api.AuthAcceptLoginToken(ctx, tok.Token); !tgerr.Is(err, "AUTH_TOKEN_INVALID") {
		t.Errorf("token accepted twice: %v", err)
	}
	// Other tests ring alice's devices: leave no extra one behind.
	if _, err := fresh.api.AuthLogOut(ctx); err != nil {
		t.Error(err)
	}
}

func TestQRLogin2FA(t *testing.T) {
	n := shnet(t)
	carol := loggedIn(t, "carol")
	fresh, err := startClient(n.ClientOptions(), "qr2fa")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.close()
	ctx := ctxSlow(t)
	res, err := fresh.api.AuthExportLoginToken(ctx, &tg.AuthExportLoginTokenRequest{APIID: 1, APIHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.api.AuthAcceptLoginToken(ctx, res.(*tg.AuthLoginToken).Token); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.api.AuthExportLoginToken(ctx, &tg.AuthExportLoginTokenRequest{APIID: 1, APIHash: "x"}); !tgerr.Is(err, "SESSION_PASSWORD_NEEDED") {
		t.Fatalf("2FA account after accept: %v", err)
	}
	if _, err := fresh.client.Auth().Password(ctx, "wrong"); !errors.Is(err, auth.ErrPasswordInvalid) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := fresh.client.Auth().Password(ctx, user(t, "carol").Password); err != nil {
		t.Fatalf("password: %v", err)
	}
	self, err := fresh.client.Self(ctx)
	if err != nil || self.ID != carol.self.ID {
		t.Errorf("self: %v %v", self, err)
	}
	if _, err := fresh.api.AuthLogOut(ctx); err != nil {
		t.Error(err)
	}
}
