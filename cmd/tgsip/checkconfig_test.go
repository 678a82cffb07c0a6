package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig runs `tgsip check-config` on the shipped example and on
// copies of it with one mistake each: the mistake is printed as
// FILE:LINE:COLUMN and the exit code is 1.
func TestCheckConfig(t *testing.T) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TGSIP_API_ID", "")
	t.Setenv("TGSIP_API_HASH", "")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config", "--config", "../../config.example.yaml"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "ok: 3 SIP listeners, 1 trunks, 3 Telegram accounts, 5 SIP→Telegram rules") {
		t.Fatalf("example: code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"check-config", "--print", "--config", "../../config.example.yaml"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "render_inband: true") || strings.Contains(out.String(), "change-me") {
		t.Errorf("--print: code %d, stdout %q", code, out.String())
	}
	lineOf := func(s string) int { // 1-based line of the first occurrence in the example
		i := strings.Index(string(example), s)
		if i < 0 {
			t.Fatalf("example has no %q", s)
		}
		return strings.Count(string(example[:i]), "\n") + 1
	}
	for _, tc := range []struct {
		name, old, new string
		col            int
		want           string
	}{
		{"unknown key", "  level: info ", "  levle: info ", 3, `unknown field "levle"`},
		{"wrong type", "    ptime: 20 ", "    ptime: [20] ", 12, "a list cannot go here: write a whole number"},
		{"bad duration", "  grace: 60s ", "  grace: 60 seconds ", 10, `"60 seconds" is not a duration`},
		{"invalid value", "    complexity: 5 ", "    complexity: 11 ", 17, "media.opus.complexity: 11: use 0 (cheapest) to 10"},
		{"sip check", "      password: change-me ", "      # password: change-me ", 17, `trunks[0] "pbx": username without password`},
		{"unknown account", "        accounts: [office]   #", "        accounts: [ofice]   #", 20, `"ofice" is not one of telegram.accounts`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := lineOf(tc.old)
			src := strings.Replace(string(example), tc.old, tc.new, 1)
			if tc.name == "sip check" {
				// The problem is placed at the username that wants it.
				line--
			}
			path := filepath.Join(t.TempDir(), "tgsip.yaml")
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"check-config", "--config", path}, &out, &errb)
			want := path + ":" + itoa(line) + ":" + itoa(tc.col) + ": "
			if code != 1 || !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("code %d (want 1); stderr:\n%s\nwant %q and %q", code, errb.String(), want, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout on failure: %q", out.String())
			}
		})
	}
	if code := run(context.Background(), []string{"check-config"}, &out, &errb); code != 2 {
		t.Errorf("no --config: code %d, want 2", code)
	}
	if code := run(context.Background(), []string{"check-config", "--config", filepath.Join(t.TempDir(), "none.yaml")}, &out, &errb); code != 1 {
		t.Errorf("missing file: code %d, want 1", code)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestAccountsReadTheWholeFile: `tgsip accounts` reads the same file as
// serve and check-config (the example, with its sip and routing
// sections), taking the telegram section's server for each account.
func TestAccountsReadTheWholeFile(t *testing.T) {
	t.Setenv("TGSIP_API_ID", "")
	t.Setenv("TGSIP_API_HASH", "")
	accs, err := loadAccounts("../../config.example.yaml", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if len(accs) != 3 || accs[0].Name != "office" || accs[0].DCAddress != "127.0.0.1:4430" ||
		accs[0].SessionFile != filepath.Join("../..", "sessions/office.session") {
		t.Errorf("accounts: %d, first %s at %s with %s", len(accs), accs[0].Name, accs[0].DCAddress, accs[0].SessionFile)
	}
	var out, errb bytes.Buffer
	run(context.Background(), []string{"accounts", "--offline", "--config", "../../config.example.yaml"}, &out, &errb)
	if !strings.Contains(out.String(), "office") || !strings.Contains(out.String(), "needs login") {
		t.Errorf("accounts output: %q %q", out.String(), errb.String())
	}
}

// TestDocumentedCheckOutput: the three-mistake output shown in
// docs/configuration.md is what check-config prints for those mistakes
// in the current example.
func TestDocumentedCheckOutput(t *testing.T) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	src := string(example)
	for _, r := range [][2]string{
		{"  level: info ", "  level: loud "},
		{"      password: change-me ", "      # password: change-me "},
		{"accounts: [office]   #", "accounts: [ofice]   #"},
	} {
		if !strings.Contains(src, r[0]) {
			t.Fatalf("example has no %q", r[0])
		}
		src = strings.Replace(src, r[0], r[1], 1)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tgsip.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config", "--config", filepath.Join(dir, "tgsip.yaml")}, &out, &errb); code != 1 {
		t.Fatalf("code %d", code)
	}
	got := strings.ReplaceAll(errb.String(), dir+string(filepath.Separator), "")
	if !strings.Contains(string(doc), "$ tgsip check-config --config tgsip.yaml\n"+got) {
		t.Errorf("docs/configuration.md should show:\n%s", got)
	}
}
