package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tgsip/tgsip/internal/config"
	"github.com/tgsip/tgsip/telegram/account"
)

// loadAccounts reads the accounts of a config file with the trunk's
// config package: the whole file strictly (an unknown key or a wrong type
// is an error with its line:column), only the telegram section checked.
// Accounts take the telegram section's server and API credentials where
// they name none, then TGSIP_API_ID / TGSIP_API_HASH; relative session
// and key paths are read from the file's folder.
func loadAccounts(path string, getenv func(string) string) ([]account.Config, error) {
	c, err := config.Load(path, config.Options{TelegramOnly: true, Getenv: getenv})
	if err != nil {
		return nil, err
	}
	return c.Telegram.Accounts, nil
}

// runAccounts prints each account's state: logged in or needs login, and
// the flood limits recorded in its state file. An account a running
// `tgsip serve` carries is shown as serve sees it (online, in call, flood
// waits), read from the live file serve keeps beside the session
// (account.ReadLiveFile), without asking Telegram.
func runAccounts(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tgsip accounts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath = fs.String("config", "", "config file (YAML)")
		offline    = fs.Bool("offline", false, "only read the session files, do not ask Telegram")
		timeout    = fs.Duration("timeout", 30*time.Second, "how long to wait for Telegram per account")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "tgsip accounts: --config is required")
		return 2
	}
	accs, err := loadAccounts(*configPath, os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "tgsip accounts:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPHONE\tSTATE\tUSER ID\tDETAIL")
	code := 0
	for _, c := range accs {
		var state, user, detail string
		live, running, err := account.ReadLiveFile(account.LivePath(c.SessionFile), time.Now())
		switch {
		case running:
			// A running serve carries the account: its view (in call,
			// flood waits) is the one an admin wants, and a second client
			// on the same session is not opened behind its back.
			state, detail = live.State, fmt.Sprintf("tgsip serve (pid %d) runs it", live.PID)
			if live.UserID != 0 {
				user = fmt.Sprint(live.UserID)
			}
			if !strings.HasPrefix(state, "online") && !strings.HasPrefix(state, "in call") {
				code = 1
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, orDash(c.Phone), state, orDash(user), detail)
			continue
		case err != nil:
			detail = err.Error()
		}
		state, user, d := accountState(ctx, c, *offline, *timeout)
		detail = joinDetail(d, detail)
		if state != "online" && state != "logged in" {
			code = 1
		}
		lim, err := account.ReadStateFile(c.SessionFile + ".state")
		now := time.Now()
		switch {
		case err != nil:
			detail = joinDetail(detail, err.Error())
		default:
			if lim.FloodWaitUntil.After(now) {
				state += ", flood wait until " + lim.FloodWaitUntil.Format(time.RFC3339)
			}
			if lim.PeerFloodUntil.After(now) {
				state += ", peer flood until " + lim.PeerFloodUntil.Format(time.RFC3339)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, orDash(c.Phone), state, orDash(user), orDash(detail))
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	return code
}

// accountState checks one account: "online" when Telegram confirms the
// session, "logged in" when only the file was read (--offline), "needs
// login" or "failed" with the reason.
func accountState(ctx context.Context, c account.Config, offline bool, timeout time.Duration) (state, user, detail string) {
	f := account.NewSessionFile(c.SessionFile)
	ok, err := f.Exists()
	if err != nil {
		return "failed", "", err.Error()
	}
	if !ok {
		return "needs login", "", "no session file; run tgsip login"
	}
	if _, err := f.LoadSession(ctx); err != nil {
		return "failed", "", account.Explain(err)
	}
	if offline {
		return "logged in", "", "session file present (not checked with Telegram)"
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := account.Check(cctx, c)
	switch {
	case errors.Is(err, account.ErrNeedsLogin):
		return "needs login", "", account.Explain(err)
	case err != nil:
		return "unreachable", "", account.Explain(err)
	}
	return "online", fmt.Sprint(u.ID), ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}
