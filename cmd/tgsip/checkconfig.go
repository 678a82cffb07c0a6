package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tgsip/tgsip/internal/config"
)

// runCheckConfig reads a configuration file the way serve (or, with
// --demo, demo) will, and prints "ok" with what it holds (after the
// whole configuration with --print), or every problem as
// FILE:LINE:COLUMN: message. Exit 0 when the file is usable,
// 1 when it is not, 2 for a usage error.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tgsip check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		path     = fs.String("config", "", "config file (YAML)")
		demo     = fs.Bool("demo", false, "check it for `tgsip demo` (the telegram section may be left out)")
		printCfg = fs.Bool("print", false, "print the configuration as tgsip reads it: defaults filled in, secrets redacted")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: tgsip check-config --config FILE [--demo] [--print]")
		return 2
	}
	c, err := config.Load(*path, config.Options{Demo: *demo, Getenv: os.Getenv})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce)
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", *path, len(ce.Problems))
		} else {
			fmt.Fprintln(stderr, "tgsip check-config:", err)
		}
		return 1
	}
	if *printCfg {
		fmt.Fprint(stdout, c.String())
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", *path, c.Summary())
	return 0
}
