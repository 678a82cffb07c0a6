// Package sipptest runs sipp (Debian's sip-tester) for the end-to-end
// tests of the packages that put real SIP peers against the trunk. It is
// test scaffolding: only _test.go files import it.
package sipptest

import (
	"bytes"
	"context"
	"errors"
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
	p, err := FreeMediaPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SignalingPort returns a port number of 127.0.0.1 that was free a moment
// ago for both UDP and TCP: sipp and baresip listen on both at one number,
// and a number only UDP had free was at times a TCP port in use (sipp:
// "Unable to bind main socket, errno = 98").
func SignalingPort(t testing.TB) int {
	t.Helper()
	lo := net.IPv4(127, 0, 0, 1)
	for range 50 {
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: lo})
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo, Port: port})
		l.Close()
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// FreeMediaPort is MediaPort for callers outside the test goroutine: it
// returns an error instead of failing the test.
func FreeMediaPort() (int, error) {
	lo := net.IPv4(127, 0, 0, 1)
	for range 100 {
		first, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo})
		if err != nil {
			return 0, err
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
			return p, nil
		}
	}
	return 0, errors.New("no four consecutive free UDP ports for sipp's media")
}

// MediaBindFailed reports whether sipp's error log says it could not bind
// its media ports: MediaPort's ports were free a moment before, but
// another process (a parallel test package) may take one before sipp binds
// it. sipp fails such a run before it sends anything, so the run can be
// repeated on other ports.
func MediaBindFailed(errLog []byte) bool {
	return bytes.Contains(errLog, []byte("Unable to bind")) && bytes.Contains(errLog, []byte("errno = 98"))
}

// BindAttempts is how many times a run whose media ports were taken is
// started again on fresh ports.
const BindAttempts = 3

// Start runs one sipp call (-m 1) on port of 127.0.0.1 with args (the
// scenario, and the target for a UAC) and returns a wait for its end: nil
// when the scenario completed, else an error with sipp's error and
// message traces. sipp's own -timeout bounds the run; the process is
// killed 15 s after it. A run that fails because its media ports were
// taken is repeated on fresh ones (MediaBindFailed). A test without sipp
// is skipped.
func Start(t testing.TB, port int, timeout time.Duration, args ...string) func() error {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	// run starts sipp; it is called from the test and, for a repeat, from
	// the waiting goroutine, so it reports a failed start as an error.
	tmp := t.TempDir()
	run := func() (*exec.Cmd, context.CancelFunc, string, error) {
		mp, err := FreeMediaPort()
		if err != nil {
			return nil, nil, "", err
		}
		dir, err := os.MkdirTemp(tmp, "run")
		if err != nil {
			return nil, nil, "", err
		}
		all := append([]string{
			"-i", "127.0.0.1", "-p", fmt.Sprint(port), "-mp", fmt.Sprint(mp),
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
			return nil, nil, "", err
		}
		return cmd, cancel, dir, nil
	}
	cmd, cancel, dir, err := run()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for attempt := 1; ; attempt++ {
			err := cmd.Wait()
			cancel()
			if err == nil {
				done <- nil
				return
			}
			msgs, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
			errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			if MediaBindFailed(errs) && attempt < BindAttempts {
				if cmd, cancel, dir, err = run(); err != nil {
					done <- err
					return
				}
				continue
			}
			done <- fmt.Errorf("sipp %v: %w\nerrors:\n%s\nmessages:\n%s", args, err, errs, msgs)
			return
		}
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
