package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"golang.org/x/term"

	"github.com/tgsip/tgsip/telegram/account"
)

// stdin is where `tgsip login` reads codes and passwords (a terminal or a
// pipe); tests replace it.
var stdin io.Reader = os.Stdin

// runLogin signs one configured account in on a headless server: by phone
// code (and 2FA password), or by a QR code drawn in the terminal.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tgsip login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath = fs.String("config", "", "config file (YAML)")
		name       = fs.String("account", "", "name of the account to log in")
		qr         = fs.Bool("qr", false, "log in by scanning a QR code with a logged-in Telegram app instead of a code")
		invert     = fs.Bool("qr-invert", false, "draw the QR code for a terminal with a light background")
		verbose    = fs.Bool("v", false, "log progress")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || *name == "" {
		fmt.Fprintln(stderr, "tgsip login: --config and --account are required")
		return 2
	}
	accs, err := loadAccounts(*configPath, os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "tgsip login:", err)
		return 1
	}
	var cfg *account.Config
	var names []string
	for i := range accs {
		names = append(names, accs[i].Name)
		if accs[i].Name == *name {
			cfg = &accs[i]
		}
	}
	if cfg == nil {
		fmt.Fprintf(stderr, "tgsip login: no account %q in %s (have: %s)\n", *name, *configPath, strings.Join(names, ", "))
		return 1
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	method := account.LoginCode
	if *qr {
		method = account.LoginQR
	}
	p := &terminal{in: bufio.NewReader(stdin), out: stdout, invert: *invert, phone: cfg.Phone}
	self, err := account.Login(ctx, *cfg, method, p, account.LoginOptions{Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, "tgsip login:", account.Explain(err))
		return 1
	}
	fmt.Fprintf(stdout, "account %s is logged in as %s (user id %d); session in %s\n",
		cfg.Name, describeUser(self), self.ID, cfg.SessionFile)
	return 0
}

func describeUser(u *tg.User) string {
	s := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if u.Phone != "" {
		s += " +" + u.Phone
	}
	if u.Username != "" {
		s += " @" + u.Username
	}
	return strings.TrimSpace(s)
}

// terminal is the account.Prompter of `tgsip login`: it asks on stdout and
// reads a line from stdin. A password is read without echo when stdin is a
// terminal. Nothing it reads is logged.
type terminal struct {
	in     *bufio.Reader
	out    io.Writer
	invert bool
	phone  string
}

func (t *terminal) readLine(ctx context.Context) (string, error) {
	type result struct {
		s   string
		err error
	}
	// A read from a terminal cannot be interrupted; ctx (Ctrl-C) ends
	// the wait, and the process exits right after.
	ch := make(chan result, 1)
	go func() {
		s, err := t.in.ReadString('\n')
		if errors.Is(err, io.EOF) && s != "" {
			err = nil
		}
		ch <- result{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if errors.Is(r.err, io.EOF) {
			return "", errors.New("input ended before the login finished")
		}
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (t *terminal) Code(ctx context.Context, sent *tg.AuthSentCode) (string, error) {
	where := "in your Telegram app"
	switch sent.Type.(type) {
	case *tg.AuthSentCodeTypeSMS:
		where = "by SMS"
	case *tg.AuthSentCodeTypeCall, *tg.AuthSentCodeTypeFlashCall, *tg.AuthSentCodeTypeMissedCall:
		where = "by a phone call"
	case *tg.AuthSentCodeTypeEmailCode:
		where = "by email"
	}
	fmt.Fprintf(t.out, "Telegram sent a login code for %s %s.\nCode: ", t.phone, where)
	return t.readLine(ctx)
}

func (t *terminal) Password(ctx context.Context, hint string) (string, error) {
	if hint != "" {
		fmt.Fprintf(t.out, "Two-step verification password (hint: %s): ", hint)
	} else {
		fmt.Fprint(t.out, "Two-step verification password: ")
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(t.out)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return t.readLine(ctx)
}

func (t *terminal) ShowQR(ctx context.Context, url string, expires time.Time) error {
	fmt.Fprintln(t.out, "Scan this QR code in a logged-in Telegram app: Settings → Devices → Link Desktop Device.")
	if err := account.WriteQR(t.out, url, t.invert); err != nil {
		return err
	}
	fmt.Fprintf(t.out, "It expires at %s; a new one follows. The code encodes:\n%s\n", expires.Format("15:04:05"), url)
	return nil
}

func (t *terminal) Notice(msg string) { fmt.Fprintln(t.out, msg) }
