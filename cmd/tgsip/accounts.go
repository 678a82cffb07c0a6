package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/tgsip/tgsip/telegram/account"
)

// accountsFile is the part of the config file `login` and `accounts` read
// until the trunk's config package exists: the `telegram: accounts:` list.
type accountsFile struct {
	Telegram struct {
		Accounts []account.Config `yaml:"accounts"`
	} `yaml:"telegram"`
}

// loadAccounts reads the accounts of a config file strictly (an unknown
// key or a wrong type is an error with its line:column), takes api_id and
// api_hash from the environment where the file leaves them out, resolves
// relative session and key paths against the file's folder and validates
// every account.
func loadAccounts(path string, getenv func(string) string) ([]account.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f accountsFile
	dec := yaml.NewDecoder(bytes.NewReader(raw), yaml.DisallowUnknownField(), yaml.Strict())
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", path, yaml.FormatError(err, false, false))
	}
	accs := f.Telegram.Accounts
	if len(accs) == 0 {
		return nil, fmt.Errorf("%s: no telegram accounts configured", path)
	}
	dir := filepath.Dir(path)
	names := map[string]bool{}
	files := map[string]string{}
	var errs []error
	for i := range accs {
		c, err := accs[i].WithEnv(getenv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c.SessionFile != "" && !filepath.IsAbs(c.SessionFile) {
			c.SessionFile = filepath.Join(dir, c.SessionFile)
		}
		if c.PublicKeyFile != "" && !filepath.IsAbs(c.PublicKeyFile) {
			c.PublicKeyFile = filepath.Join(dir, c.PublicKeyFile)
		}
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if names[c.Name] && c.Name != "" {
			errs = append(errs, fmt.Errorf("account %q: name used twice", c.Name))
		}
		names[c.Name] = true
		if other, ok := files[c.SessionFile]; ok && c.SessionFile != "" {
			errs = append(errs, fmt.Errorf("accounts %q and %q share session_file %s", other, c.Name, c.SessionFile))
		}
		files[c.SessionFile] = c.Name
		accs[i] = c
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errors.Join(errs...))
	}
	return accs, nil
}

// runAccounts prints each account's state: logged in or needs login, and
// the flood limits recorded in its state file.
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
		state, user, detail := accountState(ctx, c, *offline, *timeout)
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
	return a + "; " + b
}
