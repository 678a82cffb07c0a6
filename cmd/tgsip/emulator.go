package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

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
		users      userFlags
	)
	fs.Var(&users, "user", "add a user: phone[:first name[:username]] (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *usersFile != "" {
		loaded, err := emu.LoadUsers(*usersFile)
		if err != nil {
			fmt.Fprintln(stderr, "tgsip emulator:", err)
			return 1
		}
		users = append(loaded, users...)
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
		CallReceiveTimeout: *receive,
		CallRingTimeout:    *ring,
		Logger:             logger,
	}, users)
	if err != nil {
		fmt.Fprintln(stderr, "tgsip emulator:", err)
		return 1
	}
	defer n.Close()
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
