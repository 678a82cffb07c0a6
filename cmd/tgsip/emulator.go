package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsip/tgsip/telegram/emu"
)

// userFlags collects -user phone[:first name[:username]] flags.
type userFlags []emu.User

func (u *userFlags) String() string { return fmt.Sprint(len(*u), " users") }

func (u *userFlags) Set(v string) error {
	parts := strings.SplitN(v, ":", 3)
	if parts[0] == "" {
		return fmt.Errorf("want phone[:first name[:username]], got %q", v)
	}
	user := emu.User{Phone: parts[0], FirstName: parts[0]}
	if len(parts) > 1 && parts[1] != "" {
		user.FirstName = parts[1]
	}
	if len(parts) > 2 {
		user.Username = strings.TrimPrefix(parts[2], "@")
	}
	*u = append(*u, user)
	return nil
}

// failFlags collects -fail method=[CODE:]TYPE flags: each makes the next
// call of method fail with that RPC error.
type failFlags []struct {
	method string
	err    *tgerr.Error
}

func (f *failFlags) String() string { return fmt.Sprint(len(*f), " faults") }

func (f *failFlags) Set(v string) error {
	method, e, ok := strings.Cut(v, "=")
	if !ok || method == "" || e == "" {
		return fmt.Errorf("want method=[CODE:]TYPE, got %q", v)
	}
	code := 400
	if c, typ, ok := strings.Cut(e, ":"); ok {
		n, err := strconv.Atoi(c)
		if err != nil || n < 300 || n > 599 {
			return fmt.Errorf("error code %q: want 300..599", c)
		}
		code, e = n, typ
	}
	*f = append(*f, struct {
		method string
		err    *tgerr.Error
	}{method, tgerr.New(code, e)})
	return nil
}

// phoneList collects repeatable phone-number flags.
type phoneList []string

func (p *phoneList) String() string     { return strings.Join(*p, ",") }
func (p *phoneList) Set(v string) error { *p = append(*p, v); return nil }

func probability(name string, v float64) error {
	if v < 0 || v > 1 {
		return fmt.Errorf("-%s %v: want a probability in [0, 1]", name, v)
	}
	return nil
}

// runEmulator serves the emulated Telegram network until ctx ends: a real
// MTProto server that any stock client reaches with the printed address and
// the written RSA public key.
func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tgsip emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen     = fs.String("listen", "127.0.0.1:0", "MTProto listen address (loopback by default)")
		usersFile  = fs.String("users", "", "YAML file of users (see telegram/emu.LoadUsers)")
		code       = fs.String("code", "12345", "login code auth.signIn accepts")
		keyOut     = fs.String("key-out", "", "write the server's RSA public key (PEM) to this file")
		reflectors = fs.Int("reflectors", 1, "UDP reflector relays to run on 127.0.0.1")
		receive    = fs.Duration("receive-timeout", 20*time.Second, "call_receive_timeout_ms")
		ring       = fs.Duration("ring-timeout", 90*time.Second, "call_ring_timeout_ms")
		verbose    = fs.Bool("v", false, "log every request")
		turn       = fs.Bool("turn", false, "run a TURN relay and list it in every call")
		sigLoss    = fs.Float64("sig-loss", 0, "signaling fault: probability that a phone.sendSignalingData packet is lost")
		sigDup     = fs.Float64("sig-dup", 0, "signaling fault: probability that a packet is delivered twice")
		sigReorder = fs.Float64("sig-reorder", 0, "signaling fault: probability that a packet is held back behind the next one")
		sigDelay   = fs.Duration("sig-delay", 0, "signaling fault: delay of every delivered packet")
		sigSeed    = fs.Int64("sig-seed", 1, "seed of the signaling faults' random choices")
		relayOnly  = fs.Bool("relay-only", false, "no user allows p2p: every call goes through the relays (users file: p2p: nobody per user)")
		noRefl     = fs.Bool("no-reflectors", false, "leave the reflectors out of calls (they fail)")
		noTURN     = fs.Bool("no-turn", false, "leave the TURN relay out of calls (it fails)")
		users      userFlags
		fails      failFlags
		vanish     phoneList
	)
	fs.Var(&users, "user", "add a user: phone[:first name[:username]] (repeatable; usernames 5-32 characters)")
	fs.Var(&fails, "fail", "make the next call of a method fail: method=[CODE:]TYPE, e.g. phone.requestCall=500:INTERNAL (repeatable; repeats queue)")
	fs.Var(&vanish, "vanish", "start the user with this phone vanished: unreachable, as a phone that lost its network (repeatable; users file: vanished: true)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"sig-loss", *sigLoss}, {"sig-dup", *sigDup}, {"sig-reorder", *sigReorder}} {
		if err := probability(p.name, p.v); err != nil {
			fmt.Fprintln(stderr, "tgsip emulator:", err)
			return 2
		}
	}
	if *usersFile != "" {
		loaded, err := emu.LoadUsers(*usersFile)
		if err != nil {
			fmt.Fprintln(stderr, "tgsip emulator:", err)
			return 1
		}
		users = append(loaded, users...)
	}
	for i := range users {
		if *relayOnly {
			users[i].P2P = emu.Nobody
		}
	}
	for _, phone := range vanish {
		found := false
		for i := range users {
			if normalizeDigits(users[i].Phone) == normalizeDigits(phone) {
				users[i].Vanished, found = true, true
			}
		}
		if !found {
			fmt.Fprintf(stderr, "tgsip emulator: -vanish %s: no such user\n", phone)
			return 2
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	n, err := emu.ListenAndServe(ctx, emu.Options{
		Addr:               *listen,
		LoginCode:          *code,
		Reflectors:         *reflectors,
		TURN:               *turn,
		CallReceiveTimeout: *receive,
		CallRingTimeout:    *ring,
		Logger:             logger,
	}, users)
	if err != nil {
		fmt.Fprintln(stderr, "tgsip emulator:", err)
		return 1
	}
	defer n.Close()
	f := n.Faults()
	f.SetSignaling(emu.SignalingFaults{
		Loss: *sigLoss, Duplicate: *sigDup, Reorder: *sigReorder, Delay: *sigDelay, Seed: *sigSeed,
	})
	f.SetRelays(emu.RelayFaults{NoReflectors: *noRefl, NoTURN: *noTURN})
	for _, fl := range fails {
		f.FailNext(fl.method, fl.err)
	}
	if *keyOut != "" {
		if err := os.WriteFile(*keyOut, n.PublicKeyPEM(), 0o644); err != nil {
			fmt.Fprintln(stderr, "tgsip emulator:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "emulated Telegram listening on %s (DC %d), %d users\n", n.Addr(), emu.DC, len(users))
	if *keyOut != "" {
		fmt.Fprintf(stdout, "public key written to %s\n", *keyOut)
	} else {
		fmt.Fprintf(stdout, "%s", n.PublicKeyPEM())
	}
	<-ctx.Done()
	return 0
}

// normalizeDigits keeps the digits of a phone number.
func normalizeDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
