package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/account"
)

// accountsLine runs `tgsip accounts --offline` on serve's config and
// returns its exit code and the line of account name.
func accountsLine(t *testing.T, sr *serveRun, name string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(sr.ctx, []string{"accounts", "--offline", "--config", sr.cfg}, &out, &errb)
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return code, l
		}
	}
	t.Fatalf("accounts: no line for %s (exit %d)\n%s%s", name, code, out.String(), errb.String())
	return code, ""
}

// waitAccounts waits until the account's line matches want.
func waitAccounts(t *testing.T, sr *serveRun, name string, want *regexp.Regexp) (int, string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, l := accountsLine(t, sr, name)
		if want.MatchString(l) {
			return code, l
		}
		if time.Now().After(deadline) {
			t.Fatalf("accounts: %s is %q, want %v", name, l, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAccountsShowsServe: `tgsip accounts`, another command than the
// serve that carries the accounts, shows them as serve sees them through
// the live file serve keeps beside each session: main online, then "in
// call" while a call is up and online again after it; spare (never logged
// in) needs login. Once serve has stopped the live files are gone and
// accounts reads the session files again.
func TestAccountsShowsServe(t *testing.T) {
	sr := startServe(t, time.Minute, 36000)
	runs := regexp.MustCompile(`tgsip serve \(pid \d+\) runs it`)
	_, l := waitAccounts(t, sr, "main", regexp.MustCompile(`\bonline\b.*tgsip serve \(pid \d+\) runs it`))
	if !strings.Contains(l, "+15550400") {
		t.Errorf("main: %q", l)
	}
	if code, l := waitAccounts(t, sr, "spare", runs); !strings.Contains(l, "needs login") || code != 1 {
		t.Errorf("spare: %q, exit %d (want needs login, 1)", l, code)
	}

	out, user := sr.answeredCall(t)
	waitAccounts(t, sr, "main", regexp.MustCompile(`\bin call\b.*`+runs.String()))
	out.Hangup(sip.Reason{})
	select {
	case <-user.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the Telegram call did not end")
	}
	waitAccounts(t, sr, "main", regexp.MustCompile(`\bonline\b.*`+runs.String()))

	sr.drain()
	select {
	case c := <-sr.code:
		sr.code <- c // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return")
	}
	live := account.LivePath(filepath.Join(filepath.Dir(sr.cfg), "main.session"))
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("live file left after serve stopped: %v", err)
	}
	if _, l := accountsLine(t, sr, "main"); runs.MatchString(l) || !strings.Contains(l, "logged in") {
		t.Errorf("after serve: %q, want the session file's state", l)
	}
}
