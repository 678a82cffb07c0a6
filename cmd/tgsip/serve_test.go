package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// syncBuffer is a bytes.Buffer safe for the serve goroutine to write
// while the test reads it.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed and replaced at every Write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{written: make(chan struct{})} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.written)
	s.written = make(chan struct{})
	return s.b.Write(p)
}

// waitFor waits until the buffer holds sub, and reports whether it did
// within d.
func (s *syncBuffer) waitFor(sub string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		s.mu.Lock()
		has, next := strings.Contains(s.b.String(), sub), s.written
		s.mu.Unlock()
		if has {
			return true
		}
		select {
		case <-next:
		case <-deadline:
			return false
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// quiet discards the logs of the test's own peers (the PBX, the callee).
var quiet = slog.New(slog.DiscardHandler)

// loopbackTransport keeps a test's Telegram media on 127.0.0.1.
func loopbackTransport() *media.Transport {
	return &media.Transport{
		IncludeLoopback: true,
		IPFilter:        func(ip net.IP) bool { return ip.IsLoopback() },
	}
}

// runCallee logs phone in to the emulator with a call engine that hands
// each incoming call to onCall; it runs until ctx ends (wait on the
// returned channel). The engine can place calls too.
func runCallee(t *testing.T, ctx context.Context, n *emu.Network, phone string, onCall func(*tgcall.Call)) (*tgcall.Client, <-chan struct{}) {
	t.Helper()
	d := tg.NewUpdateDispatcher()
	opts := n.ClientOptions()
	opts.UpdateHandler = d
	opts.SessionStorage = &session.StorageMemory{}
	client := telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	engine := tgcall.NewClient(client.API(), tgcall.Options{Transport: loopbackTransport(), OnIncoming: onCall, Logger: quiet})
	engine.Register(d)
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := client.Run(ctx, func(ctx context.Context) error {
			if err := n.Login(ctx, client, phone, ""); err != nil {
				return err
			}
			if err := engine.Start(ctx); err != nil {
				return err
			}
			ready <- nil
			<-ctx.Done()
			engine.Close()
			return ctx.Err()
		})
		if err != nil && ctx.Err() == nil {
			ready <- err
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal("callee:", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("callee did not log in")
	}
	return engine, done
}

// loginCLI logs account in through `tgsip login` with the code on a pipe.
func loginCLI(t *testing.T, ctx context.Context, cfg, account, code string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := stdin
	stdin = r
	defer func() { stdin = old }()
	if _, err := w.WriteString(code + "\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var out, errb bytes.Buffer
	if c := run(ctx, []string{"login", "--config", cfg, "--account", account}, &out, &errb); c != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", c, out.String(), errb.String())
	}
}

// TestServeCallAndDrain runs `tgsip serve` against the emulated Telegram:
// a PBX (package sip) calls a Telegram user through it, gets 180 and 200
// and hears the user's 1 kHz tone; a second account that never logged in
// is reported and skipped; then the drain signal comes while the call is
// up: an OPTIONS probe and a new call get 503, the call is ended with a
// BYE from the trunk after the grace, and serve returns 0.
func TestServeCallAndDrain(t *testing.T) {
	const grace = 1500 * time.Millisecond
	sr := startServe(t, grace, 34000)
	out, user := sr.answeredCall(t)
	ringing := false
	for len(out.Progress()) > 0 {
		if ev := <-out.Progress(); ev.Status == 180 {
			ringing = true
		}
	}
	if !ringing {
		t.Error("no 180 before the 200")
	}
	checkToneHeard(t, user, out.Media())
	// The trunk's Telegram media came from its shared port
	// (telegram.media_port, on by default), not from a socket of the call.
	port := regexp.MustCompile(`"msg":"telegram media port"[^}]*"addrs":"\[([^\]]+)\]"`).FindStringSubmatch(sr.logs.String())
	if port == nil {
		t.Errorf("no telegram media port logged:\n%s", sr.logs.String())
	} else if st := user.Conn().Stats(); st.RemoteCandidateType != "host" || st.RemoteAddress != port[1] {
		t.Errorf("the Telegram user's media pair is %s %s, want the trunk's shared port %s", st.RemoteCandidateType, st.RemoteAddress, port[1])
	}
	if !strings.Contains(sr.logs.String(), "needs login") || !strings.Contains(sr.logs.String(), `"account":"spare"`) {
		t.Errorf("the account without a session is not reported:\n%s", sr.logs.String())
	}

	if code := probeOptions(t, sr.addr); code != 200 {
		t.Errorf("OPTIONS before the drain: %d, want 200", code)
	}
	began := time.Now()
	sr.drain()
	if !sr.logs.waitFor(`"msg":"draining`, 10*time.Second) {
		t.Fatalf("no JSON drain log line:\n%s", sr.logs.String())
	}
	// While draining, a load balancer's probe and a new call get 503.
	if code := probeOptions(t, sr.addr); code != 503 {
		t.Errorf("OPTIONS while draining: %d, want 503", code)
	}
	refused := sr.dial(t)
	select {
	case <-refused.Done():
		if ce, ok := refused.Err().(*sip.CallError); !ok || ce.Status != 503 {
			t.Errorf("call during the drain ended with %v, want 503", refused.Err())
		}
	case <-time.After(20 * time.Second):
		t.Error("call during the drain not refused")
	}
	select {
	case <-out.Done():
	case <-time.After(grace + 20*time.Second):
		t.Fatal("the call was not ended after the grace")
	}
	if took := time.Since(began); took < grace {
		t.Errorf("call ended after %v, before the grace of %v", took, grace)
	}
	sr.checkEnded(t, out, user)
}

// TestServeTelegramToSIP: a Telegram user calls the trunk's account; serve
// routes the call to the PBX (routing.telegram_to_sip.target), the PBX
// answers, the Telegram call connects, and the Telegram user's hang-up
// ends the SIP call with a BYE.
func TestServeTelegramToSIP(t *testing.T) {
	got := make(chan *sip.InboundCall, 1)
	f := func(c *sip.InboundCall) {
		got <- c
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	}
	pbxOnCall.Store(&f)
	defer pbxOnCall.Store(nil)
	sr := startServe(t, time.Minute, 34600)
	trunk, ok := sr.network.UserByPhone("+15550400")
	if !ok {
		t.Fatal("no trunk user")
	}
	call, err := sr.callee.Dial(sr.ctx, &tg.InputUser{UserID: trunk.ID, AccessHash: trunk.AccessHash})
	if err != nil {
		t.Fatal(err)
	}
	var in *sip.InboundCall
	select {
	case in = <-got:
	case <-call.Done():
		t.Fatalf("Telegram call ended: %v\n%s", call.Err(), sr.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the PBX got no call\n%s", sr.logs.String())
	}
	select {
	case <-call.Connected():
	case <-call.Done():
		t.Fatalf("Telegram call ended: %v\n%s", call.Err(), sr.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the Telegram call did not connect")
	}
	call.Hangup()
	select {
	case <-in.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the SIP call did not end after the Telegram hang-up")
	}
	if ce, ok := in.Err().(*sip.CallError); !ok || ce.Cause != sip.CauseNormal || !ce.Remote {
		t.Errorf("PBX's call ended with %v, want a BYE from the trunk", in.Err())
	}
}

// TestServeSecondSignal: a second signal during the drain hangs the call
// up at once (properly, with a BYE) instead of waiting out the grace.
func TestServeSecondSignal(t *testing.T) {
	force := make(chan os.Signal, 1)
	old := notifyForce
	notifyForce = func(c chan<- os.Signal) func() {
		done := make(chan struct{})
		go func() {
			select {
			case s := <-force:
				c <- s
			case <-done:
			}
		}()
		return func() { close(done) }
	}
	defer func() { notifyForce = old }()
	const grace = 10 * time.Minute
	sr := startServe(t, grace, 34300)
	out, user := sr.answeredCall(t)
	sr.drain()
	if !sr.logs.waitFor(`"msg":"draining`, 10*time.Second) {
		t.Fatalf("no drain log line:\n%s", sr.logs.String())
	}
	select {
	case <-out.Done():
		t.Fatalf("call ended before the second signal: %v", out.Err())
	default:
	}
	force <- syscall.SIGTERM
	select {
	case <-out.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the call was not ended after the second signal")
	}
	sr.checkEnded(t, out, user)
	if !strings.Contains(sr.logs.String(), "second signal") {
		t.Errorf("the second signal is not logged:\n%s", sr.logs.String())
	}
}

// probeOptions sends an OPTIONS probe out of any dialog to addr over UDP,
// as a load balancer does, and returns the status of the answer.
func probeOptions(t *testing.T, addr netip.AddrPort) int {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK-probe%d", time.Now().UnixNano())
	req := "OPTIONS sip:" + addr.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:probe@" + local + ">;tag=probe\r\n" +
		"To: <sip:" + addr.String() + ">\r\n" +
		"Call-ID: " + branch + "@127.0.0.1\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("OPTIONS: no answer: %v", err)
		}
		// "SIP/2.0 503 Service Unavailable"; skip a 100 (none is sent
		// for OPTIONS, but a provisional answer would be legal).
		f := strings.Fields(string(buf[:n]))
		if len(f) < 2 || f[0] != "SIP/2.0" {
			t.Fatalf("OPTIONS: answer %q", buf[:n])
		}
		code, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("OPTIONS: answer %q", buf[:n])
		}
		if code >= 200 {
			return code
		}
	}
}

// pbxOnCall, when set, takes the calls that reach the test PBX.
var pbxOnCall atomic.Pointer[func(*sip.InboundCall)]

// newPBX is a SIP server on 127.0.0.1 UDP standing for the PBX.
func newPBX(t *testing.T, rtpMin uint16) *sip.Server {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	cfg := sip.Config{
		Listen:    []sip.ListenConfig{{Transport: sip.UDP, Addr: netip.AddrPortFrom(lo, 0)}},
		Domain:    "pbx.test",
		MediaAddr: lo,
		RTPPorts:  sip.PortRange{Min: rtpMin, Max: rtpMin + 99},
		Trunks:    []sip.TrunkConfig{{Name: "local", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
	}
	cfg.Outbound.URI = "sip:127.0.0.1:9"
	cfg.Media.Codecs = []string{"PCMU"}
	s, err := sip.NewServer(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.OnCall(func(c *sip.InboundCall) {
		if f := pbxOnCall.Load(); f != nil {
			(*f)(c)
			return
		}
		c.Reject(404, "no handler")
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestServeConfigError: a wrong file makes serve exit 1 with each
// problem's line:column, before anything starts.
func TestServeConfigError(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(cfg, []byte("sip:\n  listen:\n    - {transport: udp, addr: \"127.0.0.1:0\"}\ndrain:\n  grce: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if c := run(context.Background(), []string{"serve", "--config", cfg}, &out, &errb); c != 1 {
		t.Errorf("exit %d, want 1", c)
	}
	if !strings.Contains(errb.String(), "bad.yaml:5:3: unknown field") {
		t.Errorf("stderr lacks the place of the unknown key:\n%s", errb.String())
	}
	if c := run(context.Background(), []string{"serve"}, &out, &errb); c != 2 {
		t.Errorf("serve without --config: exit %d, want 2", c)
	}
}

// TestServeMissingKeyFile: the server's public key file is opened when
// serve starts (check-config does not open files): a missing one is
// named and serve exits 1.
func TestServeMissingKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tgsip.yaml")
	yml := `sip:
  listen:
    - {transport: udp, addr: "127.0.0.1:0"}
  rtp_ports: {min: 34200, max: 34299}
telegram:
  server: {address: "127.0.0.1:1", dc: 2, public_key_file: missing.pem}
  api_id: 17349
  api_hash: 344583e45741c457fe1862106095a5eb
  accounts:
    - {name: main, phone: "+15550400", session_file: main.session}
`
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if c := run(context.Background(), []string{"serve", "--config", cfg}, &out, &errb); c != 1 {
		t.Errorf("exit %d, want 1\n%s", c, errb.String())
	}
	if !strings.Contains(errb.String(), "cannot build the trunk") || !strings.Contains(errb.String(), "missing.pem") {
		t.Errorf("stderr does not name the missing key file:\n%s", errb.String())
	}
}

// TestServeSIPPortBusy: when a SIP listener cannot bind, serve says so
// and exits 1 before any account connects.
func TestServeSIPPortBusy(t *testing.T) {
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})
	if err := os.WriteFile(filepath.Join(dir, "tg.pem"), pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "tgsip.yaml")
	yml := `sip:
  listen:
    - {transport: udp, addr: "` + busy.LocalAddr().String() + `"}
  rtp_ports: {min: 34200, max: 34299}
  trunks:
    - name: pbx
      allow: ["127.0.0.0/8"]
telegram:
  server: {address: "127.0.0.1:1", dc: 2, public_key_file: tg.pem}
  api_id: 17349
  api_hash: 344583e45741c457fe1862106095a5eb
  accounts:
    - {name: main, phone: "+15550400", session_file: main.session}
`
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if c := run(context.Background(), []string{"serve", "--config", cfg}, &out, &errb); c != 1 {
		t.Errorf("exit %d, want 1\n%s", c, errb.String())
	}
	if !strings.Contains(errb.String(), "cannot start the trunk") || !strings.Contains(errb.String(), busy.LocalAddr().String()) {
		t.Errorf("stderr does not name the busy address:\n%s", errb.String())
	}
	if strings.Contains(errb.String(), "needs login") {
		t.Errorf("an account ran although the SIP server did not start:\n%s", errb.String())
	}
}
