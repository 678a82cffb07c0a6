package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// The trunk's end-to-end tests: the real sip.Server as the trunk's SIP
// side, a second real sip.Server as the PBX calling it over loopback UDP,
// and the emulated Telegram of main_test.go with its logged-in accounts
// (mediaTrunk is the trunk's account, mediaUser the Telegram user called).

// e2eAccount adapts a test account to the trunk's Account: peers are
// resolved with real RPCs against the emulator.
type e2eAccount struct{ a *tgAccount }

func (e e2eAccount) Name() string           { return e.a.user.FirstName }
func (e e2eAccount) Ready() bool            { return true }
func (e e2eAccount) Engine() *tgcall.Client { return e.a.engine }
func (e e2eAccount) String() string         { return e.Name() }
func (e e2eAccount) api() *tg.Client        { return e.a.client.API() }
func (e e2eAccount) peerOf(res *tg.ContactsResolvedPeer) (tg.InputUserClass, error) {
	pu, ok := res.Peer.(*tg.PeerUser)
	if !ok {
		return nil, ErrPeerNotFound
	}
	for _, u := range res.Users {
		if u, ok := u.(*tg.User); ok && u.ID == pu.UserID {
			return &tg.InputUser{UserID: u.ID, AccessHash: u.AccessHash}, nil
		}
	}
	return nil, ErrPeerNotFound
}

func (e e2eAccount) ResolvePeer(ctx context.Context, p Peer) (tg.InputUserClass, error) {
	var res *tg.ContactsResolvedPeer
	var err error
	switch p.Kind {
	case PeerPhone:
		res, err = e.api().ContactsResolvePhone(ctx, p.Value)
	case PeerUsername:
		res, err = e.api().ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: p.Value})
	default:
		return nil, fmt.Errorf("test resolver: %v: %w", p, ErrPeerNotFound)
	}
	if tgerr.Is(err, "PHONE_NOT_OCCUPIED", "USERNAME_NOT_OCCUPIED") {
		return nil, fmt.Errorf("%v: %w", p, ErrPeerNotFound)
	}
	if err != nil {
		return nil, err
	}
	return e.peerOf(res)
}

// privateUser is a Telegram user nobody may call, added on first use.
var privateUser = sync.OnceValues(func() (emu.User, error) {
	return mediaNetwork.AddUser(emu.User{Phone: "+15551009", FirstName: "Private", CallPrivacy: emu.Nobody})
})

// e2eRTP hands each SIP server of these tests its own port range, away
// from the sip package's tests (20000-29200).
var e2eRTP struct {
	sync.Mutex
	next uint16
}

func nextE2ERange() sip.PortRange {
	e2eRTP.Lock()
	defer e2eRTP.Unlock()
	if e2eRTP.next == 0 || e2eRTP.next > 33800 {
		e2eRTP.next = 32000
	}
	r := sip.PortRange{Min: e2eRTP.next, Max: e2eRTP.next + 99}
	e2eRTP.next += 100
	return r
}

func sipLogger(name string) *slog.Logger {
	if os.Getenv("B2BUA_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("side", name)
	}
	return slog.New(slog.DiscardHandler)
}

// newSIPServer is a SIP server on 127.0.0.1 UDP trusting loopback,
// offering and accepting PCMU only (so the trunk transcodes).
func newSIPServer(t *testing.T, name string, mutate func(*sip.Config)) *sip.Server {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	cfg := sip.Config{
		Listen:    []sip.ListenConfig{{Transport: sip.UDP, Addr: netip.AddrPortFrom(lo, 0)}},
		Domain:    name + ".test",
		MediaAddr: lo,
		RTPPorts:  nextE2ERange(),
		Trunks:    []sip.TrunkConfig{{Name: "local", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		T1:        100 * time.Millisecond,
	}
	cfg.Media.Codecs = []string{"PCMU"}
	cfg.Media.PTime = 20
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := sip.NewServer(cfg, sipLogger(name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// e2e is one trunk and one PBX pointed at it.
type e2e struct {
	trunk     *Trunk
	tsip      *sip.Server
	pbx       *sip.Server
	pbxOnCall atomic.Pointer[func(*sip.InboundCall)]
}

// e2eRouting sends the dialled names to the emulated users.
func e2eRouting() Routing {
	return Routing{SIPToTelegram: SIPRouting{Aliases: map[string]string{
		"user":    "+" + strings.TrimPrefix(mediaUser.user.Phone, "+"),
		"private": "+15551009",
		"nobody":  "+15559999",
	}}}
}

func newE2E(t *testing.T, mutate func(*TrunkOptions)) *e2e {
	t.Helper()
	if _, err := privateUser(); err != nil {
		t.Fatal(err)
	}
	e := &e2e{}
	// The PBX dials the trunk by full URI (e.dial); its configured
	// outbound URI is never used.
	e.pbx = newSIPServer(t, "pbx", func(c *sip.Config) {
		c.Outbound.URI = "sip:127.0.0.1:9"
		c.Outbound.FromUser = "1000"
		c.Outbound.RingTimeout = 30 * time.Second
	})
	e.pbx.OnCall(func(c *sip.InboundCall) {
		if f := e.pbxOnCall.Load(); f != nil {
			(*f)(c)
			return
		}
		c.Reject(404, "no handler")
	})
	if err := e.pbx.Start(); err != nil {
		t.Fatal(err)
	}
	pbxAddr, _ := e.pbx.Addr(sip.UDP)
	e.tsip = newSIPServer(t, "trunk", func(c *sip.Config) {
		c.Outbound.URI = "sip:" + pbxAddr.String()
		c.Outbound.FromUser = "tgsip"
		c.Outbound.RingTimeout = 30 * time.Second
	})
	routing := e2eRouting()
	routing.TelegramToSIP.Target = "sip:2000@" + pbxAddr.String()
	opts := TrunkOptions{
		SIP:      e.tsip,
		Accounts: []Account{e2eAccount{mediaTrunk}},
		Routing:  routing,
		Media:    MediaOptions{Logger: testLogger()},
		Logger:   sipLogger("b2bua"),
	}
	if mutate != nil {
		mutate(&opts)
	}
	tr, err := NewTrunk(opts)
	if err != nil {
		e.pbx.Close()
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		e.pbx.Close()
		t.Fatal(err)
	}
	e.trunk = tr
	acc := opts.Accounts[0]
	incoming := func(c *tgcall.Call) { tr.Incoming(acc, c) }
	mediaTrunk.onIncoming.Store(&incoming)
	t.Cleanup(func() {
		mediaTrunk.onIncoming.Store(nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Close(ctx); err != nil {
			t.Errorf("trunk close: %v", err)
		}
		e.pbx.Close()
		mediaUser.onIncoming.Store(nil)
		checkNoOpenTelegramCalls(t)
		checkAccountsFree(t)
	})
	return e
}

// checkAccountsFree waits until the trunk's and the user's engines carry
// no call: a call stays on its engine until its discardCall RPC returns,
// after its Done, and the next test's Dial on that account then failed
// with tgcall.ErrBusy (TestTrunkPBXByeDuringTelegramSetup: "dial the
// trunk: tgcall: account busy").
func checkAccountsFree(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range []*tgAccount{mediaTrunk, mediaUser} {
		for a.engine.ActiveCalls() > 0 {
			if time.Now().After(deadline) {
				t.Errorf("%s still carries %d calls after 10 s", a.user.FirstName, a.engine.ActiveCalls())
				break
			}
			time.Sleep(2 * time.Millisecond) // no event marks the release
		}
	}
}

// checkNoOpenTelegramCalls fails if the emulator has a call that has not
// ended (waiting a little: the last discard may be in flight).
func checkNoOpenTelegramCalls(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open := 0
		for _, c := range mediaNetwork.Calls() {
			if c.EndDate.IsZero() {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d calls left open on the emulated Telegram", open)
			return
		}
		time.Sleep(20 * time.Millisecond) // polling the emulator's records, no event exists for it
	}
}

// dial places a call from the PBX to name at the trunk.
func (e *e2e) dial(t *testing.T, name string) *sip.OutboundCall {
	t.Helper()
	addr, _ := e.tsip.Addr(sip.UDP)
	c, err := e.pbx.Dial(context.Background(), sip.DialRequest{To: "sip:" + name + "@" + addr.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16}) })
	return c
}

// endOf waits for a SIP call's end and returns its error.
func endOf(t *testing.T, c interface {
	Done() <-chan struct{}
	Err() error
}) *sip.CallError {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("SIP call did not end within 20 s")
	}
	ce, ok := c.Err().(*sip.CallError)
	if !ok {
		t.Fatalf("call end %T %v", c.Err(), c.Err())
	}
	return ce
}

// userIncoming makes the Telegram user hand each incoming call to f.
func userIncoming(f func(*tgcall.Call)) {
	mediaUser.onIncoming.Store(&f)
}
