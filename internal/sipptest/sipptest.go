// Package sipptest runs sipp (Debian's sip-tester) for the end-to-end
// tests of the packages that put real SIP peers against the trunk. It is
// test scaffolding: only _test.go files import it.
package sipptest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MediaPort returns the first of four consecutive UDP ports of 127.0.0.1
// that were free a moment ago: sipp binds audio RTP and RTCP at -mp and
// -mp+1 and video at -mp+2 and -mp+3, and fails a run when any of them is
// taken (which a single free port often is under parallel test load).
func MediaPort(t testing.TB) int {
	t.Helper()
	lo := net.IPv4(127, 0, 0, 1)
	for range 100 {
		first, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo})
		if err != nil {
			t.Fatal(err)
		}
		p := first.LocalAddr().(*net.UDPAddr).Port
		held := []*net.UDPConn{first}
		ok := p%2 == 0 && p+3 <= 65535
		for i := 1; ok && i < 4; i++ {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo, Port: p + i})
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no four consecutive free UDP ports for sipp's media")
	return 0
}

// Start runs one sipp call (-m 1) on port of 127.0.0.1 with args (the
// scenario, and the target for a UAC) and returns a wait for its end: nil
// when the scenario completed, else an error with sipp's error and
// message traces. sipp's own -timeout bounds the run; the process is
// killed 15 s after it. A test without sipp is skipped.
func Start(t testing.TB, port int, timeout time.Duration, args ...string) func() error {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	dir := t.TempDir()
	all := append([]string{
		"-i", "127.0.0.1", "-p", fmt.Sprint(port), "-mp", fmt.Sprint(MediaPort(t)),
		"-m", "1", "-timeout", fmt.Sprintf("%ds", int(timeout.Seconds())), "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "msg.log"),
		"-nostdin",
	}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+15*time.Second)
	cmd := exec.CommandContext(ctx, bin, all...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		cancel()
		if err != nil {
			msgs, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
			errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			err = fmt.Errorf("sipp %v: %w\nerrors:\n%s\nmessages:\n%s", args, err, errs, msgs)
		}
		done <- err
	}()
	var result error
	waited := false
	wait := func() error {
		if !waited {
			result, waited = <-done, true
		}
		return result
	}
	t.Cleanup(func() { _ = wait() })
	return wait
}
