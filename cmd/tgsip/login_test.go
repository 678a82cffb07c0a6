package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/emu"
)

// TestLoginAndAccountsCLI logs an account in through `tgsip login` with
// the code arriving on a pipe (a wrong one first), then lists the
// accounts.
func TestLoginAndAccountsCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := emu.ListenAndServe(ctx, emu.Options{LoginCode: "24680"}, []emu.User{
		{Phone: "+15550300", FirstName: "Pbx", Username: "pbx"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "emu.pem"), n.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "tgsip.yaml")
	yml := `telegram:
  accounts:
    - name: main
      phone: "+15550300"
      session_file: sessions/main.session
      dc: 2
      dc_address: ` + n.Addr().String() + `
      public_key_file: emu.pem
    - name: spare
      phone: "+15550301"
      session_file: sessions/spare.session
      dc: 2
      dc_address: ` + n.Addr().String() + `
      public_key_file: emu.pem
`
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TGSIP_API_ID", "17349")
	t.Setenv("TGSIP_API_HASH", "344583e45741c457fe1862106095a5eb")

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := stdin
	stdin = r
	defer func() { stdin = old }()
	if _, err := w.WriteString("11111\n24680\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()

	var out, errb bytes.Buffer
	if code := run(ctx, []string{"login", "--config", cfg, "--account", "main"}, &out, &errb); code != 0 {
		t.Fatalf("login: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Code:", "login code is wrong", "logged in as Pbx +15550300 @pbx"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("login output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), "24680") {
		t.Error("the login code was echoed or logged")
	}
	st, err := os.Stat(filepath.Join(dir, "sessions", "main.session"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v %v", st, err)
	}

	out.Reset()
	errb.Reset()
	code := run(ctx, []string{"accounts", "--config", cfg}, &out, &errb)
	if code != 1 { // spare needs login
		t.Errorf("accounts: exit %d, stderr %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "main") || !strings.Contains(lines[1], "online") ||
		!strings.Contains(lines[2], "spare") || !strings.Contains(lines[2], "needs login") {
		t.Errorf("accounts output:\n%s", out.String())
	}

	// An unknown account, and a code that never comes.
	if code := run(ctx, []string{"login", "--config", cfg, "--account", "nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "have: main, spare") {
		t.Errorf("unknown account: %d %s", code, errb.String())
	}
}

func TestAccountsConfigStrict(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yml, want string }{
		"unknown key":  {"telegram:\n  accounts:\n    - name: a\n      phon: \"+1\"\n", "[4:7]"},
		"wrong type":   {"telegram:\n  accounts:\n    - name: a\n      dc: two\n", "[4:11]"},
		"top level":    {"telegrm: {}\n", "[1:1]"},
		"no accounts":  {"telegram:\n  accounts: []\n", "no telegram accounts"},
		"missing addr": {"telegram:\n  accounts:\n    - {name: a, session_file: a.s, api_id: 1, api_hash: h, dc: 2, public_key_file: k}\n", "dc_address is required"},
		"duplicate": {"telegram:\n  accounts:\n" +
			"    - {name: a, session_file: a.s, api_id: 1, api_hash: h, dc: 2, dc_address: '127.0.0.1:1', public_key_file: k}\n" +
			"    - {name: a, session_file: a.s, api_id: 1, api_hash: h, dc: 2, dc_address: '127.0.0.1:1', public_key_file: k}\n", "name used twice"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(p, []byte(tc.yml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadAccounts(p, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"accounts"}, &out, &errb); code != 2 {
		t.Errorf("accounts without --config: %d", code)
	}
	if code := run(context.Background(), []string{"login", "--config", "x"}, &out, &errb); code != 2 {
		t.Errorf("login without --account: %d", code)
	}
}
