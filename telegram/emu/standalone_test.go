package emu

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
)

// TestStandalone starts a network the way `tgsip demo` does and reaches it
// as a third-party client would: by address and PEM public key only.
func TestStandalone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := ListenAndServe(ctx, Options{LoginCode: "24680", PrivateKey: testKey(t)}, []User{
		{Phone: "+20000000001", Username: "echoes", FirstName: "Echo"},
		{Phone: "+20000000002", Username: "safety", FirstName: "Safe", Password: "s3cret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !n.Addr().Addr().IsLoopback() {
		t.Fatalf("listening on %v", n.Addr())
	}
	pemPath := filepath.Join(t.TempDir(), "emu.pem")
	if err := os.WriteFile(pemPath, n.PublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := n.Addr().String()

	// From here on only addr and the PEM file are used.
	pemBytes, err := os.ReadFile(pemPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.ParseRSAPublicKeys(pemBytes)
	if err != nil || len(keys) != 1 {
		t.Fatalf("parse PEM: %v (%d keys)", err, len(keys))
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := startClient(ClientOptionsFor(ap, keys[0]), "external")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()

	code := auth.CodeAuthenticatorFunc(func(context.Context, *tg.AuthSentCode) (string, error) { return "24680", nil })
	lctx := ctxSlow(t)
	if err := auth.NewFlow(auth.Constant("+20000000001", "", code), auth.SendCodeOptions{}).Run(lctx, c.client.Auth()); err != nil {
		t.Fatalf("login by code: %v", err)
	}
	self, err := c.client.Self(lctx)
	if err != nil || self.Username != "echoes" {
		t.Fatalf("self %v %v", self, err)
	}
	if _, err := c.api.AuthLogOut(lctx); err != nil {
		t.Fatal(err)
	}
	if err := auth.NewFlow(auth.Constant("+20000000002", "s3cret", code), auth.SendCodeOptions{}).Run(lctx, c.client.Auth()); err != nil {
		t.Fatalf("login with 2FA: %v", err)
	}
	self, err = c.client.Self(lctx)
	if err != nil || self.Username != "safety" {
		t.Fatalf("self %v %v", self, err)
	}
}
