package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tgsip/tgsip/internal/config"
	"github.com/tgsip/tgsip/internal/demo"
	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/account"
	"github.com/tgsip/tgsip/telegram/emu"
)

// demoDefaults is the configuration of `tgsip demo` without --config: the
// defaults (SIP on demo.sip_listen, the default cast), a trunk that lets
// loopback callers in, and SDES-SRTP optional (package sip's default is
// off), so a phone that offers RTP/SAVP (baresip's mediaenc=srtp-mand) is
// answered with SRTP and one that offers plain RTP with plain RTP.
const demoDefaults = `sip:
  trunks:
    - {name: demo, allow: ["127.0.0.0/8", "::1/128"]}
  media: {srtp: optional}
`

// demoStarted, when a test sets it, is given the demo's emulated network
// once it runs, so the test can check the Telegram side of its calls
// (nothing left ringing or active). Nil outside tests.
var demoStarted func(*emu.Network)

// runDemo runs the emulated Telegram network in-process with the demo
// users on it, a trunk account (or the configured ones) logged in to it
// automatically, and the trunk itself (the same parts as serve, built by
// buildTrunk) with routing aliases to the demo users, until ctx ends;
// then it drains as serve does. Exit 0 after the drain, 1 when it cannot
// start, 2 for a usage error.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tgsip demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		path      = fs.String("config", "", "config file (YAML): its SIP, trunk, outbound, routing, media, drain and demo settings; the Telegram side is emulated")
		sipListen = fs.String("sip-listen", "", "SIP address (UDP and TCP), default demo.sip_listen (127.0.0.1:5060)")
		emuListen = fs.String("emulator-listen", "", "emulated Telegram's address for outside MTProto clients, default demo.emulator_listen (127.0.0.1:0, a free port)")
		inboundTo = fs.String("inbound-to", "", "a SIP URI a demo user (tone) calls through the trunk: the Telegram -> SIP path")
		keyOut    = fs.String("key-out", "", "write the emulator's public key here, default demo.public_key_file (a temporary file)")
		accounts  = fs.Int("accounts", 1, "trunk accounts to create when the config names none")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *accounts < 1 || *accounts > 99 {
		fmt.Fprintln(stderr, "usage: tgsip demo [--config FILE] [--sip-listen IP:PORT] [--inbound-to SIP-URI] [--accounts 1..99]")
		return 2
	}
	c, code := demoConfig(*path, stderr)
	if c == nil {
		return code
	}
	if *sipListen != "" {
		ap, err := netip.ParseAddrPort(*sipListen)
		if err != nil {
			fmt.Fprintf(stderr, "tgsip demo: --sip-listen %q: want IP:port\n", *sipListen)
			return 2
		}
		c.Demo.SIPListen = ap
		c.SIP.Listen = []sip.ListenConfig{{Transport: sip.UDP, Addr: ap}, {Transport: sip.TCP, Addr: ap}}
	}
	if *emuListen != "" {
		ap, err := netip.ParseAddrPort(*emuListen)
		if err != nil {
			fmt.Fprintf(stderr, "tgsip demo: --emulator-listen %q: want IP:port\n", *emuListen)
			return 2
		}
		c.Demo.EmulatorListen = ap
	}
	if *inboundTo != "" {
		if !strings.HasPrefix(*inboundTo, "sip:") && !strings.HasPrefix(*inboundTo, "sips:") {
			fmt.Fprintf(stderr, "tgsip demo: --inbound-to %q: write a SIP URI (sip:user@host:port)\n", *inboundTo)
			return 2
		}
		c.Demo.InboundTo = *inboundTo
	}
	if *keyOut != "" {
		c.Demo.PublicKeyFile = *keyOut
	}
	log := slog.New(c.Log.Handler(stderr))
	sip.RouteLibraryLog(log.With("part", "sip"))
	defer sip.RouteLibraryLog(nil)
	if err := demoRun(ctx, c, *accounts, stdout, log); err != nil {
		log.Error("tgsip demo", "err", err)
		return 1
	}
	return 0
}

// demoConfig reads --config for the demo, or the demo's defaults; nil and
// the exit code when it cannot.
func demoConfig(path string, stderr io.Writer) (*config.Config, int) {
	var (
		c   *config.Config
		err error
	)
	if path == "" {
		c, err = config.Parse([]byte(demoDefaults), "tgsip demo defaults", config.Options{Demo: true})
	} else {
		c, err = config.Load(path, config.Options{Demo: true})
	}
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce)
			fmt.Fprintf(stderr, "%s: %d problem(s); tgsip check-config --demo --config %s checks a file\n", path, len(ce.Problems), path)
		} else {
			fmt.Fprintln(stderr, "tgsip demo:", err)
		}
		return nil, 1
	}
	return c, 0
}

// demoRun is the demo between its configuration and its end: it returns
// nil after a clean drain.
func demoRun(ctx context.Context, c *config.Config, count int, stdout io.Writer, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "tgsip-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The emulator and the demo users outlive ctx: the drain after it
	// still hangs their calls up properly.
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	n, err := emu.New(emu.Options{
		Addr:      c.Demo.EmulatorListen.String(),
		LoginCode: c.Demo.LoginCode,
		Logger:    log.With("part", "emulator"),
	})
	if err != nil {
		return err
	}
	if err := n.Start(life); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	defer n.Close()
	if demoStarted != nil {
		demoStarted(n)
	}
	keyFile := c.Demo.PublicKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(dir, "emulator.pem")
	}
	if err := os.WriteFile(keyFile, n.PublicKeyPEM(), 0o644); err != nil {
		return fmt.Errorf("emulator key: %w", err)
	}

	key := n.ClientOptions().PublicKeys[0].RSA
	c.Telegram.Accounts = demoAccounts(c.Telegram.Accounts, count, n.Addr(), key, dir)
	if err := demoLogin(ctx, n, c.Telegram.Accounts, log.With("part", "login")); err != nil {
		return err
	}
	entries, err := demoEntries(c.Demo.Users)
	if err != nil {
		return err
	}
	users, err := demo.Start(life, n, demo.Options{Users: entries, Logger: log.With("part", "demo")})
	if err != nil {
		return err
	}
	defer users.Close()

	// The demo users' aliases, under those the file names itself.
	aliases := demo.Aliases(entries)
	maps.Copy(aliases, c.Routing.SIPToTelegram.Aliases)
	c.Routing.SIPToTelegram.Aliases = aliases
	if c.Demo.InboundTo != "" {
		c.Routing.TelegramToSIP.Target = c.Demo.InboundTo
		c.Routing.TelegramToSIP.Rules = nil
		if c.SIP.Outbound.URI == "" {
			c.SIP.Outbound.URI = outboundFor(c.Demo.InboundTo)
		}
	}
	if err := c.Routing.Validate(); err != nil {
		return err
	}

	parts, err := buildTrunk(c, trunkOptions{Logger: log})
	if err != nil {
		return fmt.Errorf("build the trunk: %w", err)
	}
	if err := parts.Start(ctx); err != nil {
		return fmt.Errorf("start the trunk: %w", err)
	}
	sipAddr := c.Demo.SIPListen.String()
	for _, tp := range []sip.Transport{sip.UDP, sip.TCP, sip.TLS} {
		if a, ok := parts.SIP.Addr(tp); ok {
			fmt.Fprintf(stdout, "sip listening on %s %s\n", strings.ToLower(string(tp)), a)
			if tp == sip.UDP {
				sipAddr = a.String()
			}
		}
	}
	online := waitOnline(ctx, parts.Accounts, time.Minute)
	printDemo(stdout, n, keyFile, c, entries, parts.Accounts, online, sipAddr)

	hangupProbe := func() {}
	if c.Demo.InboundTo != "" && len(online) > 0 {
		from, ok := inboundCaller(entries)
		if !ok {
			log.Error("--inbound-to: no demo user can place calls")
		} else {
			to := online[0].Config().Phone
			probe, err := users.Call(life, from, to)
			if err != nil {
				log.Error("--inbound-to: the demo user's call failed", "from", from, "to", to, "err", err)
			} else {
				fmt.Fprintf(stdout, "%s is calling %s (account %s), routed to %s\n", from, to, online[0].Name(), c.Demo.InboundTo)
				done := make(chan struct{})
				go func() { defer close(done); reportProbe(ctx, stdout, probe) }()
				// The demo user hangs its own call up before the drain,
				// so the drain does not wait out its grace for it.
				hangupProbe = func() { probe.Call.Hangup(); <-done }
			}
		}
	}
	fmt.Fprintln(stdout, "demo ready; Ctrl-C (SIGINT) or SIGTERM stops it")

	<-ctx.Done()
	hangupProbe()
	return drainTrunk(parts, log)
}

// waitOnline waits up to d for every account to come online and returns
// those that did, in order.
func waitOnline(ctx context.Context, accs []*account.Account, d time.Duration) []*account.Account {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	var out []*account.Account
	for _, a := range accs {
	wait:
		for {
			ch := a.Changed()
			switch a.Status().State {
			case account.StateOnline:
				out = append(out, a)
				break wait
			case account.StateNeedsLogin, account.StateFailed:
				break wait
			}
			select {
			case <-ch:
			case <-deadline.C:
				return out
			case <-ctx.Done():
				return out
			}
		}
	}
	return out
}

// printDemo tells the user how to reach everything.
func printDemo(w io.Writer, n *emu.Network, keyFile string, c *config.Config, entries []demo.Entry, accs, online []*account.Account, sipAddr string) {
	fmt.Fprintf(w, "emulated Telegram listening on %s (DC %d); public key in %s; login code %s\n",
		n.Addr(), emu.DC, keyFile, c.Demo.LoginCode)
	for _, a := range accs {
		state := "offline"
		for _, o := range online {
			if o == a {
				state = "online"
			}
		}
		fmt.Fprintf(w, "trunk account %s %s (%s)\n", a.Name(), a.Config().Phone, state)
	}
	fmt.Fprintln(w, "call the demo users:")
	for _, e := range entries {
		fmt.Fprintf(w, "  sip:%s@%s  @%s %s  %s\n", e.Name, sipAddr, e.Username, e.Phone, e.Description())
	}
	fmt.Fprintf(w, "for example: sipp -sn uac -i 127.0.0.1 -m 1 -s echo %s   or in baresip: /dial sip:echo@%s\n", sipAddr, sipAddr)
	fmt.Fprintf(w, "an outside MTProto client logs in to %s with the key above as any demo user's phone and code %s, and calls a trunk account to reach the PBX\n",
		n.Addr(), c.Demo.LoginCode)
}

// reportProbe prints what the --inbound-to call heard every few seconds
// while it lasts, and once at its end.
func reportProbe(ctx context.Context, w io.Writer, p *demo.Probe) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	line := func(prefix string) {
		h := p.Heard()
		fmt.Fprintf(w, "%s: %d packets, dominant %.0f Hz (prominence %.1f), level %.0f\n", prefix, h.Packets, h.Frequency, h.Prominence, h.RMS)
	}
	for {
		select {
		case <-p.Call.Done():
			line("inbound call ended; the demo user heard")
			return
		case <-tick.C:
			line("the demo user hears")
		case <-ctx.Done():
			// The drain ends the call; report then.
			<-p.Call.Done()
			line("inbound call ended; the demo user heard")
			return
		}
	}
}

// drainTrunk closes the trunk as serve does after its signal: a second
// signal during the drain hangs every call up at once.
func drainTrunk(parts *trunkParts, log *slog.Logger) error {
	force := make(chan os.Signal, 1)
	stopForce := notifyForce(force)
	defer stopForce()
	closeCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case sig := <-force:
			log.Warn("second signal: hanging up every call now", "signal", sig.String())
			cancel()
		case <-closeCtx.Done():
		}
	}()
	if err := parts.Close(closeCtx); err != nil {
		return fmt.Errorf("closing the trunk: %w", err)
	}
	log.Info("tgsip demo stopped")
	return nil
}
