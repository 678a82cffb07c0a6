package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tgsip/tgsip/internal/sipptest"
)

func TestMain(m *testing.M) {
	// No sipgo goroutine is ignored: Server.Close closes the listeners and
	// the user agent and waits for every goroutine the server started, and
	// sipgo v1.7.3 no longer parks handler goroutines in
	// TerminateGracefully (sipgo#349). Test UACs close their own UA.
	goleak.VerifyTestMain(m)
}

// testLog collects the server's log for the failure output of a test.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var rtpRange struct {
	mu   sync.Mutex
	next uint16
}

// nextRTPRange hands each server its own slice of ports.
func nextRTPRange() PortRange {
	rtpRange.mu.Lock()
	defer rtpRange.mu.Unlock()
	if rtpRange.next == 0 || rtpRange.next > 29000 {
		rtpRange.next = 20000 // below the kernel's ephemeral range, where sipp's ports come from
	}
	r := PortRange{Min: rtpRange.next, Max: rtpRange.next + 199}
	rtpRange.next += 200
	return r
}

// newTestServer starts a server on 127.0.0.1 (UDP and TCP, free ports)
// that trusts 127.0.0.0/8 unless mutate says otherwise.
func newTestServer(t testing.TB, mutate func(*Config)) *Server {
	t.Helper()
	s, _ := newLoggedServer(t, mutate)
	return s
}

// newLoggedServer is newTestServer that also returns the server's log.
func newLoggedServer(t testing.TB, mutate func(*Config)) (*Server, *testLog) {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	cfg := Config{
		Listen: []ListenConfig{
			{Transport: UDP, Addr: netip.AddrPortFrom(lo, 0)},
			{Transport: TCP, Addr: netip.AddrPortFrom(lo, 0)},
		},
		Domain:   "tgsip.test",
		RTPPorts: nextRTPRange(),
		Trunks:   []TrunkConfig{{Name: "local", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		T1:       100 * time.Millisecond,
		// A loaded test machine (-race, other tests) can be this late
		// without the server being overloaded; TestOverloadShedsLateInvite
		// turns it on.
		OverloadDelay: -1,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	lg := &testLog{}
	s, err := NewServer(cfg, slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", lg.String())
		}
	})
	return s, lg
}

// start binds the server after the test installed its handlers.
func start(t testing.TB, s *Server) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
}

// sipp runs a committed scenario once against (or for) the server. It
// returns sipp's error output and whether it succeeded.
type sippRun struct {
	Scenario string
	Remote   netip.AddrPort // empty for a UAS scenario
	Local    netip.Addr     // sipp's address; default 127.0.0.1
	Port     int            // local port; 0 picks one
	Args     []string
	Timeout  time.Duration
	Calls    int // -m; default 1
}

func sippPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed")
	}
	return p
}

// startSipp launches sipp and returns a wait function.
func startSipp(t testing.TB, r sippRun) (port int, wait func() error) {
	t.Helper()
	bin := sippPath(t)
	if r.Port == 0 {
		r.Port = sipptest.SignalingPort(t)
	}
	if r.Timeout == 0 {
		r.Timeout = 20 * time.Second
	}
	if !r.Local.IsValid() {
		r.Local = netip.MustParseAddr("127.0.0.1")
	}
	tmp := t.TempDir()
	// launch starts sipp on fresh media ports; a run whose media ports
	// were taken by another process before sipp bound them is started
	// again (sipptest.MediaBindFailed). It runs on the test's goroutine
	// first and on the waiting goroutine for a repeat, so it returns errors.
	launch := func() (*exec.Cmd, context.CancelFunc, string, *bytes.Buffer, error) {
		mp, err := sipptest.FreeMediaPort()
		if err != nil {
			return nil, nil, "", nil, err
		}
		dir, err := os.MkdirTemp(tmp, "run")
		if err != nil {
			return nil, nil, "", nil, err
		}
		args := []string{
			"-sf", filepath.Join("testdata", "sipp", r.Scenario),
			"-i", r.Local.String(), "-p", fmt.Sprint(r.Port), "-mp", fmt.Sprint(mp),
			"-m", fmt.Sprint(max(r.Calls, 1)), "-timeout", fmt.Sprintf("%ds", int(r.Timeout.Seconds())), "-timeout_error",
			"-trace_err", "-error_file", filepath.Join(dir, "err.log"),
			"-trace_msg", "-message_file", filepath.Join(dir, "msg.log"),
			"-nostdin", "-s", "1000",
		}
		args = append(args, r.Args...)
		if r.Remote.IsValid() {
			args = append(args, r.Remote.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.Timeout+10*time.Second)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = "."
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			cancel()
			return nil, nil, "", nil, err
		}
		return cmd, cancel, dir, &out, nil
	}
	cmd, cancel, dir, out, err := launch()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	finished := make(chan struct{})
	// The reporting goroutine must not outlive the test (t.Errorf after
	// the end panics): cleanup waits for sipp, which its timeout bounds.
	t.Cleanup(func() { <-finished })
	go func() {
		defer close(finished)
		for attempt := 1; ; attempt++ {
			err := cmd.Wait()
			cancel()
			if err != nil {
				msgs, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
				errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
				if sipptest.MediaBindFailed(errs) && attempt < sipptest.BindAttempts {
					if cmd, cancel, dir, out, err = launch(); err == nil {
						continue
					}
				} else {
					err = fmt.Errorf("sipp %s: %v\nerrors:\n%s\nmessages:\n%s\noutput tail:\n%s", r.Scenario, err, errs, msgs, tail(out.Bytes(), 2000))
				}
				// Report at once: the test may be blocked waiting for an
				// event that will not come now.
				t.Errorf("%v", err)
			}
			done <- err
			return
		}
	}()
	return r.Port, func() error {
		if err := <-done; err != nil {
			return errors.New("sipp failed (reported above)")
		}
		return nil
	}
}

func runSipp(t testing.TB, r sippRun) error {
	t.Helper()
	_, wait := startSipp(t, r)
	return wait()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitFor waits on ch with a deadline.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// waitUntil polls a condition that has no event of its own (a counter).
func waitUntil(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, not a protocol event
	}
}

// waitNoCalls waits until the registry is empty.
func waitNoCalls(t testing.TB, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Calls() != 0 || s.ports.InUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d dialogs and %d RTP ports left behind", s.Calls(), s.ports.InUse())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, not waiting for a protocol event
	}
}

// sippAgainst starts s and runs the sipp scenario r (a UAC) against its UDP
// listener. The returned finish waits for sipp to succeed and for every
// dialog to be gone.
func sippAgainst(t *testing.T, s *Server, r sippRun) (finish func()) {
	t.Helper()
	start(t, s)
	r.Remote, _ = s.Addr(UDP)
	_, wait := startSipp(t, r)
	return func() {
		t.Helper()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		waitNoCalls(t, s)
	}
}
