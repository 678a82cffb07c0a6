package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/internal/sipptest"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip"
)

// demoProc is `tgsip demo` running in-process.
type demoProc struct {
	addr   netip.AddrPort // its SIP address
	out    *syncBuffer
	logs   *syncBuffer
	stop   context.CancelFunc // SIGINT/SIGTERM
	code   chan int
	result *int
}

// wait returns demo's exit code once it has returned.
func (d *demoProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if d.result != nil {
		return *d.result
	}
	select {
	case c := <-d.code:
		d.result = &c
		return c
	case <-time.After(timeout):
		t.Fatalf("demo did not return\n%s", d.logs.String())
		return -1
	}
}

// freeSIPPort returns a port of 127.0.0.1 free for both UDP and TCP a
// moment ago.
func freeSIPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startDemo runs `tgsip demo --sip-listen 127.0.0.1:<free> args…` and
// waits until it says it is ready. It is stopped at the test's end. The
// demo binds SIP only after its users have logged in (seconds later), and
// an ephemeral socket (its own Telegram media, another test's) may take
// the port in between: then the demo exits at once and is started again
// on another port.
func startDemo(t *testing.T, args ...string) *demoProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		d := &demoProc{
			addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freeSIPPort(t))),
			out:  newSyncBuffer(),
			logs: newSyncBuffer(),
			code: make(chan int, 1),
		}
		ctx, stop := context.WithCancel(context.Background())
		d.stop = stop
		go func() {
			d.code <- run(ctx, append([]string{"demo", "--sip-listen", d.addr.String()}, args...), d.out, d.logs)
		}()
		deadline := time.After(2 * time.Minute)
		for {
			d.out.mu.Lock()
			ready, next := strings.Contains(d.out.b.String(), "demo ready"), d.out.written
			d.out.mu.Unlock()
			if ready {
				t.Cleanup(func() {
					stop()
					d.wait(t, time.Minute)
				})
				return d
			}
			select {
			case <-next:
				continue
			case <-deadline:
				stop()
				d.wait(t, time.Minute)
				t.Fatalf("demo not ready\nstdout:\n%s\nlogs:\n%s", d.out.String(), d.logs.String())
			case c := <-d.code:
				stop()
				if attempt < 3 && strings.Contains(d.logs.String(), "address already in use") {
					t.Logf("demo's SIP port %s was taken before it bound it; again on another", d.addr)
				} else {
					t.Fatalf("demo exited %d before it was ready\nstdout:\n%s\nlogs:\n%s", c, d.out.String(), d.logs.String())
				}
			}
			break
		}
	}
}

// sipp runs sipp (Debian sip-tester) against target from a free port of
// 127.0.0.1 and returns nil when its scenario completed.
func sipp(t *testing.T, target string, args ...string) error {
	t.Helper()
	return startSipp(t, freeSIPPort(t), target, args...)()
}

// startSipp starts sipp on port of 127.0.0.1 (target empty for a UAS) and
// returns a wait for its end: nil when its scenario completed. sipp's own
// timeout (60 s) bounds the run.
func startSipp(t *testing.T, port int, target string, args ...string) func() error {
	t.Helper()
	if target != "" {
		args = append(args, target)
	}
	return sipptest.Start(t, port, 60*time.Second, args...)
}

// TestDemoCalls runs the demo on a free port and calls its users from
// sipp: echo answers (200, then sipp's BYE gets 200), busy gets 486; a
// SIP call to tone hears 1 kHz. SIGINT (the context) drains it: exit 0,
// its temporary files gone, no goroutine left (TestMain).
func TestDemoCalls(t *testing.T) {
	d := startDemo(t)
	out := d.out.String()
	for _, name := range []string{"echo", "tone", "busy", "noanswer", "private", "relayonly"} {
		if !strings.Contains(out, "sip:"+name+"@"+d.addr.String()+" ") {
			t.Errorf("the demo does not say how to call %s:\n%s", name, out)
		}
	}
	m := regexp.MustCompile(`public key in (\S+);`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no key file printed:\n%s", out)
	}
	if _, err := os.Stat(m[1]); err != nil {
		t.Errorf("key file: %v", err)
	}
	if !regexp.MustCompile(`trunk account demo-trunk-1 \+\d+ \(online\)`).MatchString(out) {
		t.Errorf("no trunk account online printed:\n%s", out)
	}

	// sipp's built-in UAC: INVITE, 200 expected, ACK, BYE, 200.
	if err := sipp(t, d.addr.String(), "-sn", "uac", "-s", "echo"); err != nil {
		t.Fatalf("echo: %v\n%s", err, d.logs.String())
	}
	if err := sipp(t, d.addr.String(), "-sf", filepath.Join("..", "..", "b2bua", "testdata", "sipp", "uac_busy.xml"), "-s", "busy"); err != nil {
		t.Fatalf("busy: %v\n%s", err, d.logs.String())
	}
	pbx := newPBX(t, 35200)
	call, err := pbx.Dial(context.Background(), sip.DialRequest{To: "sip:tone@" + d.addr.String()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Answered():
	case <-call.Done():
		t.Fatalf("tone: %v\n%s", call.Err(), d.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("tone did not answer")
	}
	if f, prom := hearSIP(t, call.Media()); math.Abs(f-1000) > 20 || prom < 20 {
		t.Errorf("tone: heard %v Hz (prominence %.1f), want 1000 Hz", f, prom)
	}
	call.Hangup(sip.Reason{})

	d.stop()
	if c := d.wait(t, time.Minute); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("key file left behind: %v", err)
	}
}

// hearSIP returns the dominant frequency of a quarter second of the call's
// SIP audio, after the first 15 packets.
func hearSIP(t *testing.T, m sip.Media) (freq, prominence float64) {
	t.Helper()
	if m.Endpoint == nil {
		t.Fatal("the call has no media endpoint")
	}
	dec, err := codec.NewDecoder(m.Codec.Name, int(m.Codec.ClockRate), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, skip := dec.SampleRate()/4, 15
	buf := make([]byte, 1500)
	pcm := make([]int16, 5760)
	var got []int16
	var pkt rtp.Packet
	for len(got) < want {
		n, err := m.Endpoint.ReadRTP(buf)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != m.Codec.PayloadType {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		k, err := dec.Decode(pkt.Payload, pcm)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pcm[:k]...)
	}
	return audiotest.DominantFrequency(got, dec.SampleRate(), 100, 3500, 2)
}

// TestDemoInboundTo: --inbound-to a sipp UAS that answers and echoes RTP;
// the demo user (tone) calls the trunk's account, the trunk calls sipp,
// and the demo user hears its own 1 kHz come back through the trunk, as
// demo prints. Stopping demo hangs up: sipp gets the BYE and completes.
func TestDemoInboundTo(t *testing.T) {
	port := freeSIPPort(t)
	wait := startSipp(t, port, "", "-sf", filepath.Join("..", "..", "b2bua", "testdata", "sipp", "uas_echo.xml"), "-rtp_echo")
	d := startDemo(t, "--inbound-to", fmt.Sprintf("sip:2000@127.0.0.1:%d", port))
	heard := regexp.MustCompile(`the demo user hears: (\d+) packets, dominant (\d+) Hz \(prominence ([\d.]+)\)`)
	deadline := time.After(45 * time.Second)
	for ok := false; !ok; {
		d.out.mu.Lock()
		text, next := d.out.b.String(), d.out.written
		d.out.mu.Unlock()
		for _, m := range heard.FindAllStringSubmatch(text, -1) {
			var f, prom float64
			fmt.Sscan(m[2], &f)
			fmt.Sscan(m[3], &prom)
			if math.Abs(f-1000) <= 20 && prom >= 20 {
				ok = true
			}
		}
		if ok {
			break
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("the demo user did not hear its 1 kHz back\nstdout:\n%s\nlogs:\n%s", text, d.logs.String())
		}
	}
	stopped := time.Now()
	d.stop()
	// The demo user hangs up first: no drain grace (60 s) to wait out.
	if c := d.wait(t, 15*time.Second); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
	t.Logf("demo stopped in %v", time.Since(stopped))
	if err := wait(); err != nil {
		t.Errorf("sipp: %v", err)
	}
	if !strings.Contains(d.out.String(), "inbound call ended; the demo user heard") {
		t.Errorf("no final report:\n%s", d.out.String())
	}
}

// TestDemoConfig: --config takes the file's SIP, routing and accounts
// (names and phones; the Telegram side is the emulator's): the configured
// account is logged in on the emulator whatever server the file names,
// the file's alias reaches a demo user next to the demo's own aliases,
// and nothing is written next to the file.
func TestDemoConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tgsip.yaml")
	if err := os.WriteFile(cfg, []byte(`log: {level: debug}
sip:
  trunks:
    - {name: pbx, allow: ["127.0.0.0/8"]}
  rtp_ports: {min: 35400, max: 35499}
telegram:
  server: {address: "192.0.2.1:443", dc: 4, public_key_file: missing.pem}
  accounts:
    - {name: office, phone: "+15550001001", session_file: sessions/office.session}
routing:
  sip_to_telegram:
    aliases:
      mirror: "@demo_echo"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, "--config", cfg)
	if !strings.Contains(d.out.String(), "trunk account office +15550001001 (online)") {
		t.Errorf("the configured account is not online:\n%s", d.out.String())
	}
	for _, name := range []string{"mirror", "echo"} {
		if err := sipp(t, d.addr.String(), "-sn", "uac", "-s", name); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, d.logs.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sessions")); !os.IsNotExist(err) {
		t.Errorf("the demo wrote next to the config file: %v", err)
	}
	d.stop()
	if c := d.wait(t, time.Minute); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
}

// TestDemoUsage: wrong flags exit 2 and a wrong file exits 1 before
// anything starts.
func TestDemoUsage(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("demo:\n  login_code: abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--sip-listen", "localhost"}, 2, "--sip-listen"},
		{[]string{"--emulator-listen", "x"}, 2, "--emulator-listen"},
		{[]string{"--inbound-to", "2000@pbx"}, 2, "SIP URI"},
		{[]string{"--accounts", "0"}, 2, "usage"},
		{[]string{"extra"}, 2, "usage"},
		{[]string{"--config", bad}, 1, "demo.login_code"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"demo"}, c.args...), &out, &errb); code != c.code || !strings.Contains(errb.String(), c.says) {
			t.Errorf("demo %v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.says)
		}
	}
}
