package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// serveRun is `tgsip serve` running in-process against the emulated
// Telegram, with a logged-in account "main", an account "spare" that never
// logged in, a Telegram user "callee" who answers every call, and a PBX.
type serveRun struct {
	ctx      context.Context
	logs     *syncBuffer
	code     chan int
	drain    context.CancelFunc // the first SIGTERM
	addr     netip.AddrPort     // serve's SIP (UDP) address
	pbx      *sip.Server
	incoming chan *tgcall.Call
	network  *emu.Network
	callee   *tgcall.Client // the callee's call engine, to call the trunk
	cfg      string         // serve's config file
}

// startServe starts the emulator, logs "main" in through `tgsip login`,
// starts the callee and serve (SIP RTP ports from rtpMin), and waits for
// "main" to be online. Everything stops at the test's end.
func startServe(t *testing.T, grace time.Duration, rtpMin uint16) *serveRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	n, err := emu.ListenAndServe(ctx, emu.Options{LoginCode: "24680"}, []emu.User{
		{Phone: "+15550400", FirstName: "Trunk"},
		{Phone: "+15550401", FirstName: "Callee"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "emu.pem"), n.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	pbx := newPBX(t, rtpMin+100)
	pbxAddr, _ := pbx.Addr(sip.UDP)
	cfg := filepath.Join(dir, "tgsip.yaml")
	yml := fmt.Sprintf(`log:
  level: debug
  format: json
sip:
  listen:
    - {transport: udp, addr: "127.0.0.1:0"}
  domain: trunk.test
  rtp_ports: {min: %d, max: %d}
  trunks:
    - name: pbx
      allow: ["127.0.0.0/8"]
  media:
    codecs: [PCMU]
  outbound:
    uri: "sip:%s"
telegram:
  server: {address: "%s", dc: 2, public_key_file: emu.pem}
  api_id: 17349
  api_hash: 344583e45741c457fe1862106095a5eb
  accounts:
    - {name: main, phone: "+15550400", session_file: main.session}
    - {name: spare, phone: "+15550409", session_file: spare.session}
routing:
  sip_to_telegram:
    aliases:
      callee: "+15550401"
  telegram_to_sip:
    target: "sip:2000@%s"
drain:
  grace: %s
`, rtpMin, rtpMin+99, pbxAddr, n.Addr(), pbxAddr, grace)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	loginCLI(t, ctx, cfg, "main", "24680")

	sr := &serveRun{ctx: ctx, cfg: cfg, logs: newSyncBuffer(), code: make(chan int, 1), incoming: make(chan *tgcall.Call, 4), network: n, pbx: pbx}
	calleeCtx, stopCallee := context.WithCancel(ctx)
	var calleeDone <-chan struct{}
	sr.callee, calleeDone = runCallee(t, calleeCtx, n, "+15550401", func(c *tgcall.Call) {
		sr.incoming <- c
		c.Accept()
	})
	t.Cleanup(func() { stopCallee(); <-calleeDone })

	sctx, drain := context.WithCancel(ctx)
	sr.drain = drain
	pr, pw := io.Pipe()
	go func() {
		sr.code <- run(sctx, []string{"serve", "--config", cfg}, pw, sr.logs)
		pw.Close()
	}()
	// Registered after the callee's: runs first, so serve stops before
	// the callee and the emulator.
	t.Cleanup(func() {
		drain()
		select {
		case <-sr.code:
		case <-time.After(30 * time.Second):
			t.Error("serve did not return")
		}
	})
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("serve printed nothing\n%s", sr.logs.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	f := strings.Fields(lines.Text()) // sip listening on udp 127.0.0.1:PORT
	if len(f) != 5 || f[3] != "udp" {
		t.Fatalf("first line %q", lines.Text())
	}
	sr.addr, err = netip.ParseAddrPort(f[4])
	if err != nil || !sr.addr.Addr().IsLoopback() {
		t.Fatalf("address %q: %v", f[4], err)
	}
	// The pool answers 503 until the account is online.
	if !sr.logs.waitFor(`"msg":"telegram account online"`, 60*time.Second) {
		t.Fatalf("the account did not come online:\n%s", sr.logs.String())
	}
	return sr
}

// dial places a call from the PBX to the callee through serve.
func (sr *serveRun) dial(t *testing.T) *sip.OutboundCall {
	t.Helper()
	c, err := sr.pbx.Dial(sr.ctx, sip.DialRequest{To: "sip:callee@" + sr.addr.String()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answeredCall places a call the callee answers.
func (sr *serveRun) answeredCall(t *testing.T) (*sip.OutboundCall, *tgcall.Call) {
	t.Helper()
	out := sr.dial(t)
	select {
	case <-out.Answered():
	case <-out.Done():
		t.Fatalf("call ended with %v\n%s", out.Err(), sr.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no answer\n%s", sr.logs.String())
	}
	select {
	case user := <-sr.incoming:
		return out, user
	default:
		t.Fatal("answered, but the Telegram user got no call")
	}
	return nil, nil
}

// checkEnded checks a call ended by the drain: a BYE from the trunk to
// the PBX, the Telegram call ended, serve returned 0.
func (sr *serveRun) checkEnded(t *testing.T, out *sip.OutboundCall, user *tgcall.Call) {
	t.Helper()
	if ce, ok := out.Err().(*sip.CallError); !ok || ce.Cause != sip.CauseNormal || !ce.Remote {
		t.Errorf("PBX's call ended with %v, want a BYE from the trunk", out.Err())
	}
	select {
	case <-user.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the Telegram call did not end")
	}
	select {
	case c := <-sr.code:
		sr.code <- c // for the cleanup
		if c != 0 {
			t.Errorf("serve exit %d\n%s", c, sr.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return")
	}
}
