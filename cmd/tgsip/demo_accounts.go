package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/internal/config"
	"github.com/tgsip/tgsip/internal/demo"
	"github.com/tgsip/tgsip/telegram/account"
	"github.com/tgsip/tgsip/telegram/emu"
)

// demoTrunkPhone is the n-th (from 1) trunk account's number when the
// configuration names none: Telegram's test-number pattern 99966XYYYY
// (X the DC, 2), kept off the demo users' +99966210NN.
func demoTrunkPhone(n int) string { return fmt.Sprintf("+99966290%02d", n) }

// demoAccounts returns the trunk's accounts for the emulator at addr with
// key: the configured ones (their names and phones; a missing phone gets a
// demo number) or, when there are none, count accounts demo-trunk-N. The
// server, key, API credentials and session files (in dir) are the
// demo's, whatever the file says: only the Telegram side is emulated.
func demoAccounts(configured []account.Config, count int, addr netip.AddrPort, key *rsa.PublicKey, dir string) []account.Config {
	if len(configured) == 0 {
		for i := 1; i <= count; i++ {
			configured = append(configured, account.Config{Name: fmt.Sprintf("demo-trunk-%d", i)})
		}
	}
	if addr.Addr().IsUnspecified() {
		// Listening on every interface: the in-process accounts use the
		// loopback one.
		lo := netip.MustParseAddr("127.0.0.1")
		if addr.Addr().Is6() {
			lo = netip.IPv6Loopback()
		}
		addr = netip.AddrPortFrom(lo, addr.Port())
	}
	out := make([]account.Config, len(configured))
	for i, a := range configured {
		phone := a.Phone
		if phone == "" {
			phone = demoTrunkPhone(i + 1)
		}
		out[i] = account.Config{
			Name:        a.Name,
			Phone:       phone,
			SessionFile: filepath.Join(dir, fmt.Sprintf("account-%d.session", i+1)),
			APIID:       telegram.TestAppID,
			APIHash:     telegram.TestAppHash,
			DC:          emu.DC,
			DCAddress:   addr.String(),
			PublicKey:   key,
		}
	}
	return out
}

// demoLogin creates each account's user on the emulator and logs it in
// with the emulator's login code, writing its session file: no code to
// type.
func demoLogin(ctx context.Context, n *emu.Network, accs []account.Config, code string, log *slog.Logger) error {
	for _, a := range accs {
		if _, err := n.AddUser(emu.User{Phone: a.Phone, FirstName: "tgsip", LastName: a.Name}); err != nil {
			return fmt.Errorf("trunk account %s: %w", a.Name, err)
		}
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := account.Login(lctx, a, account.LoginCode, codePrompter{code: code, log: log}, account.LoginOptions{Logger: log, Attempts: 1})
		cancel()
		if err != nil {
			return fmt.Errorf("trunk account %s: log in on the emulator: %w", a.Name, err)
		}
	}
	return nil
}

// codePrompter answers a login with the emulator's code.
type codePrompter struct {
	code string
	log  *slog.Logger
}

func (p codePrompter) Code(context.Context, *tg.AuthSentCode) (string, error) { return p.code, nil }

func (p codePrompter) Password(context.Context, string) (string, error) {
	return "", errors.New("the demo accounts have no 2FA password")
}

func (p codePrompter) ShowQR(context.Context, string, time.Time) error {
	return errors.New("the demo logs in by code")
}

func (p codePrompter) Notice(msg string) { p.log.Warn("demo login", "notice", msg) }

// demoEntries turns the configuration's demo.users into the cast.
func demoEntries(users []config.DemoUser) ([]demo.Entry, error) {
	out := make([]demo.Entry, 0, len(users))
	for i, u := range users {
		b, err := demo.ParseBehaviour(u.Behavior)
		if err != nil {
			return nil, err
		}
		e, err := demo.NewEntry(u.Name, b, i+1)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// inboundCaller picks the demo user that calls the trunk for
// --inbound-to: tone if the cast has it, else the first that can place
// calls (not private).
func inboundCaller(entries []demo.Entry) (string, bool) {
	for _, e := range entries {
		if e.Name == "tone" && e.Behaviour != demo.Private {
			return e.Name, true
		}
	}
	for _, e := range entries {
		if e.Behaviour != demo.Private {
			return e.Name, true
		}
	}
	return "", false
}

// outboundFor is the PBX address of a SIP URI: its scheme, host, port
// and transport parameter, without the user.
func outboundFor(uri string) string {
	scheme, rest, _ := strings.Cut(uri, ":")
	if _, host, ok := strings.Cut(rest, "@"); ok {
		rest = host
	}
	host, params, _ := strings.Cut(rest, ";")
	out := scheme + ":" + host
	for _, p := range strings.Split(params, ";") {
		if strings.HasPrefix(strings.ToLower(p), "transport=") {
			out += ";" + p
		}
	}
	return out
}
