package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"go.uber.org/goleak"

	"github.com/tgsip/tgsip/telegram/emu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Errorf("no args: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown: code %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "tgsip ") {
		t.Errorf("version: code %d, out %q", code, out.String())
	}
	if code := run(context.Background(), []string{"emulator", "-user", ""}, &out, &errb); code != 2 {
		t.Errorf("bad -user: code %d", code)
	}
	for _, args := range [][]string{
		{"-sig-loss", "1.5"}, {"-fail", "phone.requestCall"}, {"-fail", "x=99:BAD"},
		{"-user", "+15550001", "-vanish", "+15550002"},
	} {
		if code := run(context.Background(), append([]string{"emulator"}, args...), &out, &errb); code != 2 {
			t.Errorf("emulator %v: code %d, want 2", args, code)
		}
	}
	// Telegram's usernames have at least 5 characters; stock clients
	// refuse shorter ones, so the emulator does too.
	if code := run(context.Background(), []string{"emulator", "-user", "+15550001:Bob:bob"}, &out, &errb); code != 1 {
		t.Errorf("username bob: code %d, want 1", code)
	}
}

// TestEmulatorStandalone runs `tgsip emulator` and reaches it the way an
// independent client would: by the printed address and the written public
// key only, logging in by phone and code over real MTProto.
func TestEmulatorStandalone(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "tg.pem")
	usersFile := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(usersFile, []byte("users:\n  - phone: \"+15550100\"\n    first_name: Bea\n    username: beatrice\n    vanished: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"emulator", "-listen", "127.0.0.1:0", "-key-out", keyFile,
			"-users", usersFile, "-user", "+15550101:Ann:annabel", "-code", "24680",
			"-sig-loss", "0.2", "-sig-delay", "10ms", "-relay-only", "-turn",
			"-fail", "contacts.resolvePhone=400:PHONE_TEST_FAULT"}, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output; exit %d", <-done)
	}
	first := lines.Text()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	// "emulated Telegram listening on 127.0.0.1:PORT (DC 2), 2 users"
	f := strings.Fields(first)
	if len(f) < 5 || !strings.Contains(first, "2 users") {
		t.Fatalf("unexpected first line %q", first)
	}
	addr, err := netip.ParseAddrPort(f[4])
	if err != nil || !addr.Addr().IsLoopback() {
		t.Fatalf("address %q: %v", f[4], err)
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("no PEM block in key file")
	}
	key, err := x509.ParsePKCS1PublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	opts := emu.ClientOptionsFor(addr, key)
	opts.SessionStorage = &session.StorageMemory{}
	client := telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	err = client.Run(cctx, func(ctx context.Context) error {
		flow := auth.NewFlow(auth.Constant("+15550101", "", auth.CodeAuthenticatorFunc(
			func(context.Context, *tg.AuthSentCode) (string, error) { return "24680", nil })), auth.SendCodeOptions{})
		if err := client.Auth().IfNecessary(ctx, flow); err != nil {
			return err
		}
		self, err := client.Self(ctx)
		if err != nil {
			return err
		}
		if self.FirstName != "Ann" {
			t.Errorf("self is %q, want Ann", self.FirstName)
		}
		res, err := client.API().ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "beatrice"})
		if err != nil {
			return err
		}
		if len(res.Users) != 1 {
			t.Errorf("resolve @beatrice: %d users", len(res.Users))
		}
		// -fail: the first call fails as asked, the next one runs.
		if _, err := client.API().ContactsResolvePhone(ctx, "+15550100"); !tgerr.Is(err, "PHONE_TEST_FAULT") {
			t.Errorf("first resolvePhone: %v, want PHONE_TEST_FAULT", err)
		}
		if _, err := client.API().ContactsResolvePhone(ctx, "+15550100"); err != nil {
			t.Errorf("second resolvePhone: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("emulator exit code %d", code)
	}
}
