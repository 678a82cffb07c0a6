// Package emu is an emulated Telegram network: a real MTProto server on
// loopback, built on gotd/td's tgtest, with accounts, login (code and 2FA with
// real SRP), contacts, a per-device update log that gotd's updates manager can
// replay, the phone.* call switch of 1:1 calls and UDP reflector relays.
//
// Tests of the call engine run two or more stock gotd clients through a
// Network; `tgsip demo` and third-party MTProto clients connect to one by
// address and RSA public key. Everything listens on 127.0.0.1 by default.
// One port accepts the abridged, intermediate, padded intermediate, full
// and obfuscated2 transports (listener.go), and each client is served in
// the API layer it announced, for the layers in SupportedLayers
// (layers.go): GramJS 2.26 (198), Telethon v1 (190) and gotd (229) are
// checked by tests.
//
// Simplifications against real Telegram, chosen so that a client sees a
// consistent world:
//   - one DC (2); access hashes are per user, not per viewer;
//   - the common update sequence (seq) is per device (auth key), not per
//     account: each device sees consecutive seq numbers for exactly the
//     updates pushed to it, and updates.getDifference replays them;
//   - reflectors forward any tag, they are not told about calls.
package emu

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gotd/log/logslog"
	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"

	"github.com/tgsip/tgsip/internal/gotdquiet"
)

// DC is the data-center id the emulator serves.
const DC = 2

// Options configure a Network. The zero value is usable.
type Options struct {
	// Addr is the MTProto listen address. Default "127.0.0.1:0".
	Addr string
	// LoginCode is the code auth.signIn accepts. Default "12345".
	LoginCode string

	// CallReceiveTimeout is help.getConfig call_receive_timeout_ms and how
	// long the switch waits for phone.receivedCall before it discards the
	// call as missed. Default 20s.
	CallReceiveTimeout time.Duration
	// CallRingTimeout is call_ring_timeout_ms and how long a received call
	// may ring before the switch discards it as missed. Default 90s.
	CallRingTimeout time.Duration
	// CallConnectTimeout is call_connect_timeout_ms and how long an accepted
	// call may wait for phone.confirmCall before the switch discards it with
	// reason disconnect. Default 30s.
	CallConnectTimeout time.Duration
	// CallPacketTimeout is call_packet_timeout_ms. Default 10s.
	CallPacketTimeout time.Duration

	// Reflectors is the number of UDP reflector relays on 127.0.0.1 listed
	// in every phoneCall. Default 1; negative means none.
	Reflectors int

	// TURN runs a standard TURN server on 127.0.0.1 and lists it in every
	// phoneCall as a phoneConnectionWebrtc entry (turn and stun set, with
	// credentials), as Telegram may do for its own relays.
	TURN bool

	// PrivateKey is the server's RSA key. Default: a fresh 2048-bit key.
	// Keep one across restarts so that external clients' copy of
	// PublicKeyPEM stays valid.
	PrivateKey *rsa.PrivateKey

	// KeepEndedCalls is how many ended calls Call and Calls still report;
	// beyond it the emulator forgets the oldest, as Telegram forgets
	// calls, so that a long-running emulator does not grow with every
	// call it ever switched. Calls in progress are always kept. Default
	// 1000; negative keeps every call (a load run pairing all its calls).
	KeepEndedCalls int

	// Logger receives the emulator's logs. Default: discard.
	Logger *slog.Logger
	// Random is the source of keys, ids and tags. Default crypto/rand.
	Random io.Reader
}

func (o *Options) setDefaults() {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.LoginCode == "" {
		o.LoginCode = "12345"
	}
	if o.CallReceiveTimeout <= 0 {
		o.CallReceiveTimeout = 20 * time.Second
	}
	if o.CallRingTimeout <= 0 {
		o.CallRingTimeout = 90 * time.Second
	}
	if o.CallConnectTimeout <= 0 {
		o.CallConnectTimeout = 30 * time.Second
	}
	if o.CallPacketTimeout <= 0 {
		o.CallPacketTimeout = 10 * time.Second
	}
	if o.Reflectors == 0 {
		o.Reflectors = 1
	}
	if o.KeepEndedCalls == 0 {
		o.KeepEndedCalls = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Random == nil {
		o.Random = rand.Reader
	}
}

// readTimeout is the server's per-read deadline. gotd clients ping every
// 60 s; tgtest's 30 s default would drop idle clients (and lose pushes).
const readTimeout = 10 * time.Minute

// Network is one emulated Telegram network. Create it with New, add users,
// Start it, and Close it when done.
type Network struct {
	opts   Options
	log    *slog.Logger
	key    *rsa.PrivateKey
	srv    *tgtest.Server
	faults *Faults
	dh     dhConfig

	mu         sync.Mutex
	started    bool
	closed     bool
	ctx        context.Context // valid after Start
	cancel     context.CancelFunc
	ln         net.Listener
	addr       netip.AddrPort
	reflectors []*reflector
	turn       *turnRelay
	users      map[int64]*account
	byPhone    map[string]*account
	byUsername map[string]*account
	devices    map[[8]byte]*device
	calls      map[int64]*call
	callOrder  []int64
	ended      []int64 // ended calls still kept, oldest first (KeepEndedCalls)
	nextUserID int64

	wg sync.WaitGroup
}

// New creates a Network that is not yet listening.
func New(opts Options) (*Network, error) {
	opts.setDefaults()
	if _, err := netip.ParseAddrPort(opts.Addr); err != nil {
		return nil, fmt.Errorf("emu: listen address %q: %w", opts.Addr, err)
	}
	key := opts.PrivateKey
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(opts.Random, crypto.RSAKeyBits); err != nil {
			return nil, fmt.Errorf("emu: generate RSA key: %w", err)
		}
	}
	n := &Network{
		opts:       opts,
		log:        opts.Logger,
		key:        key,
		users:      map[int64]*account{},
		byPhone:    map[string]*account{},
		byUsername: map[string]*account{},
		devices:    map[[8]byte]*device{},
		calls:      map[int64]*call{},
		nextUserID: 100000001,
	}
	n.faults = newFaults(n)
	n.dh = newDHConfig()
	n.srv = tgtest.NewServer(tgtest.NewPrivateKey(key), n.handler(), tgtest.ServerOptions{
		DC:           DC,
		Random:       opts.Random,
		Logger:       logslog.New(n.log.With("component", "tgtest")),
		ReadTimeout:  readTimeout,
		WriteTimeout: 10 * time.Second,
	})
	return n, nil
}

// Start listens on Options.Addr and on the reflector ports and serves in
// background goroutines owned by the Network until Close or until ctx ends.
func (n *Network) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return errors.New("emu: already started")
	}
	if n.closed {
		return errors.New("emu: closed")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", n.opts.Addr)
	if err != nil {
		return fmt.Errorf("emu: listen: %w", err)
	}
	var refls []*reflector
	var relay *turnRelay
	cleanup := func() {
		for _, r := range refls {
			_ = r.close() // the listen error is the one to report
		}
		if relay != nil {
			_ = relay.close() // likewise
		}
		_ = ln.Close()
	}
	reflIDs, turnID := connectionIDs(max(n.opts.Reflectors, 0), n.opts.TURN)
	for i := 0; i < n.opts.Reflectors; i++ {
		r, err := listenReflector(ctx, reflIDs[i], n.log)
		if err != nil {
			cleanup()
			return err
		}
		r.drop = n.reflectorDrops
		refls = append(refls, r)
	}
	if n.opts.TURN {
		user, password, err := n.turnCredentials()
		if err == nil {
			relay, err = listenTURN(ctx, user, password, n.log)
		}
		if err == nil {
			relay.id = turnID
		}
		if err != nil {
			cleanup()
			return err
		}
	}
	n.turn = relay
	n.ln = ln
	n.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	n.reflectors = refls
	n.ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	n.started = true
	serveCtx := n.ctx
	sniffer := newSniffListener(ln, n.log)
	n.wg.Go(func() {
		// transport.Listen detects the plain transports; the sniffer
		// unwraps obfuscated2 first (listener.go).
		if err := n.srv.Serve(serveCtx, transport.Listen(sniffer)); err != nil {
			n.log.Warn("mtproto server stopped", "err", err)
		}
	})
	for _, r := range refls {
		n.wg.Go(r.serve)
	}
	// Start's ctx bounds the Network's life as documented.
	n.wg.Go(func() {
		select {
		case <-ctx.Done():
			n.shutdown()
		case <-serveCtx.Done():
		}
	})
	n.log.Info("emulated telegram listening", "addr", n.addr.String(), "reflectors", len(refls))
	return nil
}

// shutdown stops the listeners and timers without waiting.
func (n *Network) shutdown() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	cancel := n.cancel
	refls := n.reflectors
	relay := n.turn
	var calls []*call
	for _, c := range n.calls {
		calls = append(calls, c)
	}
	devs := make([]*device, 0, len(n.devices))
	for _, d := range n.devices {
		devs = append(devs, d)
	}
	n.mu.Unlock()
	if cancel != nil {
		cancel() // closes the MTProto listener and every connection
	}
	for _, r := range refls {
		_ = r.close() // closing unblocks its read loop; nothing to report
	}
	if relay != nil {
		_ = relay.close() // closing ends its goroutines; nothing to report
	}
	for _, c := range calls {
		n.mu.Lock()
		n.stopTimerLocked(c)
		n.mu.Unlock()
	}
	for _, d := range devs {
		d.stopHeld(n)
	}
}

// Close stops everything and waits for every goroutine the Network started.
func (n *Network) Close() error {
	n.shutdown()
	n.wg.Wait()
	return nil
}

// Addr is the MTProto address clients connect to (valid after Start).
func (n *Network) Addr() netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Reflectors lists the UDP reflector addresses (valid after Start), in the
// order of their phoneConnection ids 1, 2, ….
func (n *Network) Reflectors() []netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]netip.AddrPort, len(n.reflectors))
	for i, r := range n.reflectors {
		out[i] = r.addr
	}
	return out
}

// PublicKeyPEM is the server's RSA public key ("RSA PUBLIC KEY", PKCS#1) as
// external MTProto clients expect it.
func (n *Network) PublicKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{
		Type:  "RSA PUBLIC KEY",
		Bytes: x509.MarshalPKCS1PublicKey(&n.key.PublicKey),
	})
}

// ClientOptions returns gotd client options that reach this Network: its
// public key, DC 2 at Addr, a plain TCP resolver. The caller adds an
// UpdateHandler, SessionStorage, Logger as it needs. Valid after Start.
func (n *Network) ClientOptions() telegram.Options {
	return ClientOptionsFor(n.Addr(), &n.key.PublicKey)
}

// ClientOptionsFor builds gotd client options for an emulator known only by
// address and public key (for example one started by another process).
func ClientOptionsFor(addr netip.AddrPort, key *rsa.PublicKey) telegram.Options {
	return telegram.Options{
		PublicKeys: []telegram.PublicKey{{RSA: key}},
		DC:         DC,
		DCList: dcs.List{Options: []tg.DCOption{{
			ID:        DC,
			IPAddress: addr.Addr().String(),
			Port:      int(addr.Port()),
			Static:    true,
		}}},
		Resolver: dcs.Plain(dcs.PlainOptions{}),
		// As a trunk account has them (telegram/account): no gzip_packed
		// (tdlib packs only what gzip shrinks below 90 %, and call
		// signaling is encrypted) and a logger gotd need not wrap on
		// every message. Callers may set their own.
		CompressThreshold: -1,
		Logger:            gotdquiet.Logger{},
	}
}

// ListenAndServe creates a Network with opts, adds users and starts it. The
// Network lives until Close or until ctx ends.
func ListenAndServe(ctx context.Context, opts Options, users []User) (*Network, error) {
	n, err := New(opts)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if _, err := n.AddUser(u); err != nil {
			return nil, err
		}
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// configLocked is help.getConfig's answer. Caller holds n.mu.
func (n *Network) configLocked() *tg.Config {
	now := time.Now()
	addr := n.addr
	return &tg.Config{
		Date:    int(now.Unix()),
		Expires: int(now.Add(time.Hour).Unix()),
		ThisDC:  DC,
		DCOptions: []tg.DCOption{{
			ID: DC, IPAddress: addr.Addr().String(), Port: int(addr.Port()), Static: true,
		}},
		DCTxtDomainName:         "emu.invalid",
		ChatSizeMax:             200,
		MegagroupSizeMax:        200000,
		ForwardedCountMax:       100,
		OnlineUpdatePeriodMs:    210000,
		OfflineBlurTimeoutMs:    5000,
		OfflineIdleTimeoutMs:    30000,
		OnlineCloudTimeoutMs:    300000,
		NotifyCloudDelayMs:      30000,
		NotifyDefaultDelayMs:    1500,
		PushChatPeriodMs:        60000,
		PushChatLimit:           2,
		EditTimeLimit:           172800,
		RevokeTimeLimit:         172800,
		RevokePmTimeLimit:       172800,
		RatingEDecay:            2419200,
		StickersRecentLimit:     200,
		CallReceiveTimeoutMs:    int(n.opts.CallReceiveTimeout.Milliseconds()),
		CallRingTimeoutMs:       int(n.opts.CallRingTimeout.Milliseconds()),
		CallConnectTimeoutMs:    int(n.opts.CallConnectTimeout.Milliseconds()),
		CallPacketTimeoutMs:     int(n.opts.CallPacketTimeout.Milliseconds()),
		MeURLPrefix:             "https://t.me/",
		CaptionLengthMax:        1024,
		MessageLengthMax:        4096,
		WebfileDCID:             DC,
		DefaultP2PContacts:      true,
		RevokePmInbox:           true,
		BlockedMode:             false,
		PreloadFeaturedStickers: false,
	}
}
