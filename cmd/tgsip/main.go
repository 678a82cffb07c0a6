// Command tgsip is the SIP ⇄ Telegram trunk. Subcommands:
//
//	tgsip version     print the version
//	tgsip emulator    run the emulated Telegram network on a loopback port
//	tgsip login       log a Telegram account in (code, 2FA, QR)
//	tgsip accounts    show each Telegram account's state
//	tgsip check-config  check a config file strictly
//	tgsip serve       run the trunk of a config file; SIGTERM drains it
//	tgsip demo        the trunk against an emulated Telegram with demo users
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: tgsip <command> [flags]

commands:
  version     print the version
  emulator    run the emulated Telegram network (loopback by default)
  login       log a Telegram account in: --config FILE --account NAME [--qr]
  accounts    show each Telegram account's state: --config FILE
  check-config  check a config file strictly: --config FILE [--demo]
  serve       run the trunk: --config FILE (SIGTERM/SIGINT drain it)
  demo        run the trunk against an emulated Telegram with demo users to call

Run "tgsip <command> -h" for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "tgsip", version)
		return 0
	case "emulator":
		return runEmulator(ctx, args[1:], stdout, stderr)
	case "login":
		return runLogin(ctx, args[1:], stdout, stderr)
	case "accounts":
		return runAccounts(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "check-config":
		return runCheckConfig(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tgsip: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
