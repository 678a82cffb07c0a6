//go:build loadrun && linux

package main

// The trunk's half of the load run: TestLoadRun (the generator: emulator,
// demo users, sipp) starts this test binary again with
// LOADRUN_TRUNK_SPEC set, pinned to a CPU of its own, and this test runs
// the trunk as `tgsip demo` builds it (buildTrunk over the session files
// the generator's demoLogin wrote), reaching the emulator over loopback
// TCP (MTProto) and UDP (the calls' media) like `tgsip serve` reaches
// Telegram. It answers the generator's commands, one JSON object a line,
// on stdin; its replies go to descriptor 3 (stdout and stderr stay free
// for the test framework and the logs).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/tgsip/tgsip/b2bua"
	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/account"

	"github.com/tgsip/tgsip/internal/cputime"
)

// trunkSpec is what the generator tells the trunk process (a JSON file
// named by LOADRUN_TRUNK_SPEC).
type trunkSpec struct {
	Dir        string            // the session files (demoAccounts' names in it), the trunk's log
	Calls      int               // trunk accounts
	EmuAddr    string            // the emulator's MTProto address
	KeyFile    string            // its RSA public key, PEM
	SIPListen  string            // the trunk's SIP UDP address
	Aliases    map[string]string // the demo users' aliases
	CPUProfile string            // the trunk's CPU profile, idle to close ("" none)
}

// trunkCmd is one command of the generator.
type trunkCmd struct {
	Cmd    string        // "idle", "stats", "steps", "settle", "close"
	What   string        // settle: what is printed
	Within time.Duration // settle: how long it may take
}

// trunkReply answers one trunkCmd (and the first line, Ready).
type trunkReply struct {
	Ready      bool
	Procs      int // GOMAXPROCS
	Err        string
	Goroutines int
	FDs        int
	SIPCalls   int
	CPU        time.Duration // the process's CPU time so far (user + system)
	Steps      []monoCall
	Msg        string
}

// monoCall is a stepCall with its times as CLOCK_MONOTONIC readings
// (monoNanos), comparable across the two processes.
type monoCall struct {
	ID      string
	Account string
	At      [b2bua.StepDiscard + 1]int64 // 0: the step did not happen
}

// Times across the processes. Each process's step times are Go
// time.Times read with time.Now, whose monotonic part on Linux is
// CLOCK_MONOTONIC (the runtime's nanotime) offset by a per-process
// constant; wall-clock times (CLOCK_REALTIME) could be stepped or slewed
// by time synchronisation between two readings. So both processes
// translate their times to CLOCK_MONOTONIC nanoseconds, one clock of
// the kernel for every process: an anchor pair (a time.Now and a
// clock_gettime(CLOCK_MONOTONIC) taken back to back, the narrowest of a
// few tries, its midpoint) and then t.Sub(anchor) on Go's monotonic
// clock. The error is half the anchor's gap, printed by the run
// (typically well under a microsecond).
var monoAnchor = newAnchor()

type anchor struct {
	wall time.Time
	mono int64
	gap  time.Duration
}

func clockMonotonic() int64 {
	var ts syscall.Timespec
	const clockMonotonicID = 1 // CLOCK_MONOTONIC, linux/time.h
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonicID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return ts.Nano()
}

func newAnchor() anchor {
	best := anchor{gap: time.Hour}
	for range 20 {
		m0 := clockMonotonic()
		w := time.Now()
		m1 := clockMonotonic()
		if g := time.Duration(m1 - m0); g < best.gap {
			best = anchor{wall: w, mono: m0 + (m1-m0)/2, gap: g}
		}
	}
	return best
}

// monoNanos is t as a CLOCK_MONOTONIC reading; 0 for the zero time.
func monoNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return monoAnchor.mono + int64(t.Sub(monoAnchor.wall))
}

// fromMono is a CLOCK_MONOTONIC reading as a time.Time of this process
// (with its monotonic clock, so Sub with the emulator's times is exact).
func fromMono(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return monoAnchor.wall.Add(time.Duration(n - monoAnchor.mono))
}

// TestLoadRunTrunk is the trunk process of TestLoadRun; alone it skips.
func TestLoadRunTrunk(t *testing.T) {
	specFile := os.Getenv("LOADRUN_TRUNK_SPEC")
	if specFile == "" {
		t.Skip("the trunk half of TestLoadRun: started by it")
	}
	out := os.NewFile(3, "replies")
	if out == nil {
		t.Fatal("no descriptor 3 for the replies")
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	reply := func(r trunkReply) {
		if err := enc.Encode(r); err != nil {
			t.Fatalf("reply: %v", err)
		}
	}
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		reply(trunkReply{Err: msg})
		t.Fatal(msg)
	}
	raw, err := os.ReadFile(specFile)
	if err != nil {
		fail("spec: %v", err)
	}
	var spec trunkSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		fail("spec: %v", err)
	}
	logFile, err := os.Create(filepath.Join(spec.Dir, "trunk.log"))
	if err != nil {
		fail("%v", err)
	}
	defer logFile.Close()
	startG, startFD, startStacks := runtime.NumGoroutine(), openFDs(t), goroutineStacks()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))

	c, code := demoConfig("", os.Stderr)
	if c == nil {
		fail("demo config: exit %d", code)
	}
	key, err := account.ReadPublicKey(spec.KeyFile)
	if err != nil {
		fail("emulator key: %v", err)
	}
	addr, err := netip.ParseAddrPort(spec.EmuAddr)
	if err != nil {
		fail("emulator address: %v", err)
	}
	c.Telegram.Accounts = demoAccounts(nil, spec.Calls, addr, key, spec.Dir)
	sipAddr, err := netip.ParseAddrPort(spec.SIPListen)
	if err != nil {
		fail("sip address: %v", err)
	}
	c.Demo.SIPListen = sipAddr
	c.SIP.Listen = []sip.ListenConfig{{Transport: sip.UDP, Addr: sipAddr}}
	c.Routing.SIPToTelegram.Aliases = spec.Aliases
	if err := c.Routing.Validate(); err != nil {
		fail("routing: %v", err)
	}
	steps := newStepLog()
	parts, err := buildTrunk(c, trunkOptions{Logger: log, Observer: steps})
	if err != nil {
		fail("build the trunk: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := parts.Start(ctx); err != nil {
		fail("start the trunk: %v", err)
	}
	closed := false
	closeTrunk := func() error {
		if closed {
			return nil
		}
		closed = true
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		return parts.Close(cctx)
	}
	defer closeTrunk() //nolint:errcheck // the close command reports it
	if online := waitOnline(ctx, parts.Accounts, 3*time.Minute); len(online) != spec.Calls {
		fail("%d of %d trunk accounts online", len(online), spec.Calls)
	}
	reply(trunkReply{Ready: true, Procs: runtime.GOMAXPROCS(0), Goroutines: startG, FDs: startFD, Msg: fmt.Sprintf("clock anchor gap %v", monoAnchor.gap)})

	stopProfile := func() {}
	var idleG, idleFD int
	var idleStacks map[string]int
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var cmd trunkCmd
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			fail("command %q: %v", in.Text(), err)
		}
		switch cmd.Cmd {
		case "idle":
			// The profile starts before the idle counts, so its
			// goroutine and file count as idle.
			if spec.CPUProfile != "" {
				f, err := os.Create(spec.CPUProfile)
				if err != nil {
					fail("%v", err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					fail("%v", err)
				}
				stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
				spec.CPUProfile = ""
			}
			runtime.GC()
			idleG, idleFD, idleStacks = runtime.NumGoroutine(), openFDs(t), goroutineStacks()
			reply(trunkReply{Goroutines: idleG, FDs: idleFD})
		case "stats":
			reply(trunkReply{SIPCalls: parts.SIP.Calls(), CPU: cputime.Process(), Goroutines: runtime.NumGoroutine()})
		case "steps":
			var r trunkReply
			for id, sc := range steps.take() {
				mc := monoCall{ID: id, Account: sc.account}
				for i, at := range sc.at {
					mc.At[i] = monoNanos(at)
				}
				r.Steps = append(r.Steps, mc)
			}
			reply(r)
		case "settle":
			// Every dialog and transaction over (RFC 3261's timers keep a
			// finished call's transactions a while), then the process
			// back to its idle goroutines and descriptors.
			g, f, msg := settleCounts(cmd.What, parts.SIP, idleG, idleFD, idleStacks, cmd.Within)
			reply(trunkReply{Goroutines: g, FDs: f, Msg: msg, Err: errIf(g > idleG || f > idleFD, msg)})
		case "close":
			stopProfile()
			err := closeTrunk()
			cancel()
			g, f, msg := settleCounts("after shutdown", nil, startG, startFD, startStacks, time.Minute)
			r := trunkReply{Goroutines: g, FDs: f, Msg: msg, CPU: cputime.Process()}
			if err != nil {
				r.Err = fmt.Sprintf("trunk close: %v", err)
			} else if g > startG || f > startFD {
				r.Err = msg
			}
			reply(r)
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			return
		default:
			fail("unknown command %q", cmd.Cmd)
		}
	}
	if err := in.Err(); err != nil && err != io.EOF {
		t.Fatalf("commands: %v", err)
	}
	// stdin closed without "close": the generator gave up; the deferred
	// close drains the trunk.
	stopProfile()
}

func errIf(cond bool, msg string) string {
	if cond {
		return msg
	}
	return ""
}

// settleCounts waits up to within until s (when not nil) holds no dialog
// and the process has no more goroutines and descriptors than it had
// idle; it returns the counts it ended with and a line saying so, with
// the stacks that have more goroutines than at idle when it did not
// settle.
func settleCounts(what string, s *sip.Server, goroutines, fds int, idle map[string]int, within time.Duration) (int, int, string) {
	began := time.Now()
	for {
		runtime.GC()
		g, f := runtime.NumGoroutine(), countFDs()
		if (s == nil || s.Calls() == 0) && g <= goroutines && f <= fds {
			return g, f, fmt.Sprintf("%s: trunk process %d goroutines (idle %d), %d descriptors (idle %d), settled after %v",
				what, g, goroutines, f, fds, time.Since(began).Round(time.Millisecond))
		}
		if time.Since(began) > within {
			var extra strings.Builder
			for stack, n := range goroutineStacks() {
				if n > idle[stack] {
					fmt.Fprintf(&extra, "%d more:\n%s\n\n", n-idle[stack], stack)
				}
			}
			calls := 0
			if s != nil {
				calls = s.Calls()
			}
			return g, f, fmt.Sprintf("%s: trunk process leak: %d SIP dialogs, goroutines %d (idle %d), descriptors %d (idle %d) after %v\n%s",
				what, calls, g, goroutines, f, fds, within, extra.String())
		}
		time.Sleep(500 * time.Millisecond) // polling counts: no event exists for "nothing left"
	}
}

// countFDs counts the process's open file descriptors (sockets included).
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // ReadDir's own descriptor
}
