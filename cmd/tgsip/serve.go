package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tgsip/tgsip/internal/config"
	"github.com/tgsip/tgsip/sip"
)

// notifyForce relays the signals that cut a drain short (a second SIGTERM
// or SIGINT) to c until stop is called; tests replace it.
var notifyForce = func(c chan<- os.Signal) (stop func()) {
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	return func() { signal.Stop(c) }
}

// runServe runs the trunk of a configuration file until ctx ends (SIGTERM
// or SIGINT in main), then drains it: new calls are refused (503 to
// INVITE and OPTIONS), active calls may go on for drain.grace, the rest
// are hung up on both legs (BYE to the PBX, discard on Telegram), and the
// accounts disconnect. A second signal during the drain hangs every call
// up at once. Exit 0 after a drain, 1 when the configuration is
// wrong or the trunk cannot start, 2 for a usage error.
//
// Logs go to stderr as the log section asks (text or JSON, level); the
// addresses the SIP server listens on are printed to stdout, one line
// each ("sip listening on udp 127.0.0.1:5060"), so that port 0 can be
// used.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tgsip serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: tgsip serve --config FILE")
		return 2
	}
	c, err := config.Load(*path, config.Options{Getenv: os.Getenv})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce)
			fmt.Fprintf(stderr, "%s: %d problem(s); tgsip check-config --config %s checks a file\n", *path, len(ce.Problems), *path)
		} else {
			fmt.Fprintln(stderr, "tgsip serve:", err)
		}
		return 1
	}
	log := slog.New(c.Log.Handler(stderr))
	sip.RouteLibraryLog(log.With("part", "sip"))
	defer sip.RouteLibraryLog(nil)
	log.Info("tgsip starting", "version", version, "config", *path, "summary", c.Summary())
	parts, err := buildTrunk(c, trunkOptions{Logger: log})
	if err != nil {
		log.Error("cannot build the trunk", "err", err)
		return 1
	}
	if err := parts.Start(ctx); err != nil {
		log.Error("cannot start the trunk", "err", err)
		return 1
	}
	for _, tp := range []sip.Transport{sip.UDP, sip.TCP, sip.TLS} {
		if a, ok := parts.SIP.Addr(tp); ok {
			fmt.Fprintf(stdout, "sip listening on %s %s\n", strings.ToLower(string(tp)), a)
		}
	}
	log.Info("tgsip serving", "accounts", len(parts.Accounts))
	stopLive := publishLive(parts.Accounts, log)
	defer stopLive() // after the drain: the calls it waits for show as in call

	<-ctx.Done()
	// Close bounds the wait by drain.grace itself; a second signal ends
	// it at once (the calls left are still hung up properly).
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
		log.Error("closing the trunk", "err", err)
		return 1
	}
	log.Info("tgsip stopped")
	return 0
}
