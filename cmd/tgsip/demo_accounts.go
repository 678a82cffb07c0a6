package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"

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
// type. The auth key comes from the emulator's fast path (demoSession),
// and as many logins run at once as there are CPUs, so a load run's 200
// accounts take seconds.
func demoLogin(ctx context.Context, n *emu.Network, accs []account.Config, log *slog.Logger) error {
	// Every auth key first, one at a time (a few ms each). gotd's tgtest
	// (v0.162) records a new key under another mutex than the one it reads
	// keys under for each request; the emulator's keyGuard
	// (telegram/emu/keyguard.go) makes exchanges that overlap other
	// clients' requests safe, so the order is for simplicity, not safety.
	for _, a := range accs {
		if _, err := n.AddUser(emu.User{Phone: a.Phone, FirstName: "tgsip", LastName: a.Name}); err != nil {
			return fmt.Errorf("trunk account %s: %w", a.Name, err)
		}
		if err := demoKey(ctx, n, a); err != nil {
			return fmt.Errorf("trunk account %s: auth key from the emulator: %w", a.Name, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(accs))
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, a := range accs {
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("trunk account %s: %w", a.Name, ctx.Err())
				return
			}
			defer func() { <-slots }()
			lctx, lcancel := context.WithTimeout(ctx, time.Minute)
			err := demoSignIn(lctx, n, a)
			lcancel()
			if err != nil {
				errs[i] = fmt.Errorf("trunk account %s: log in on the emulator: %w", a.Name, err)
				cancel() // the others would fail the demo anyway
				return
			}
			log.Debug("trunk account logged in on the emulator", "account", a.Name)
		})
	}
	wg.Wait()
	// The first failure, not the cancellations it caused.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// demoKey writes account a's session file with an auth key the emulator
// makes (emu.Network.NewSession: a real key exchange with its server,
// without the ~0.75 s of CPU a stock client spends checking an unknown
// server, research/emulator.md §3); the session is not logged in yet.
func demoKey(ctx context.Context, n *emu.Network, a account.Config) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	data, err := n.NewSession(ctx)
	if err != nil {
		return err
	}
	return (&session.Loader{Storage: account.NewSessionFile(a.SessionFile)}).Save(ctx, data)
}

// demoSignIn logs account a in over the key in its session file: a gotd
// client loads it, logs in with the emulator's code and leaves the file
// as the account reads it at Run, where calls take the same path as with
// any session.
func demoSignIn(ctx context.Context, n *emu.Network, a account.Config) error {
	store := account.NewSessionFile(a.SessionFile)
	addr, err := netip.ParseAddrPort(a.DCAddress)
	if err != nil {
		return err
	}
	opts := emu.ClientOptionsFor(addr, a.PublicKey)
	opts.SessionStorage = store
	c := telegram.NewClient(a.APIID, a.APIHash, opts)
	return c.Run(ctx, func(ctx context.Context) error { return n.Login(ctx, c, a.Phone, "") })
}

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
