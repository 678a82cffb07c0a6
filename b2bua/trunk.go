package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/account"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Account is what the trunk needs from one Telegram account: the pool's
// view, its call engine and peer resolution. The account package's
// Account is adapted to it by the command that wires the trunk.
type Account interface {
	PoolAccount
	// Engine is the account's call engine.
	Engine() *tgcall.Client
	// ResolvePeer turns a routed peer into an input user for
	// phone.requestCall (contacts.resolvePhone / resolveUsername, or a
	// cached access hash for an id).
	ResolvePeer(ctx context.Context, p Peer) (tg.InputUserClass, error)
}

// ErrPeerNotFound is what Account.ResolvePeer wraps when the peer is no
// Telegram user (unknown username, number not on Telegram): 404.
var ErrPeerNotFound = errors.New("b2bua: peer not found")

// TrunkOptions configure a Trunk.
type TrunkOptions struct {
	// SIP is the SIP server; the trunk installs its OnCall handler and
	// starts and closes it.
	SIP *sip.Server
	// Accounts are the Telegram accounts, one call each.
	Accounts []Account
	// Routing is how calls are routed both ways.
	Routing Routing
	// Pool tunes the account pool's back-off.
	Pool PoolOptions
	// Media tunes the media bridges.
	Media MediaOptions
	// RingTimeout ends a SIP -> Telegram call that Telegram has not
	// connected in this time (480, missed on Telegram); 0 leaves it to
	// Telegram's call_ring_timeout_ms.
	RingTimeout time.Duration
	// Grace is how long Close lets active calls go on before hanging them
	// up; 0 hangs them up at once.
	Grace time.Duration
	// Logger gets the trunk's lines; slog.Default() when nil.
	Logger *slog.Logger
	// Observer, when set, is told the steps of each SIP -> Telegram call
	// (timing.go), for load runs that time the trunk's own delays.
	Observer Observer
}

// Trunk ties the SIP server, the Telegram accounts and the media bridges
// together: each call is one state machine (call.go) in its own goroutine.
type Trunk struct {
	opts     TrunkOptions
	sip      *sip.Server
	pool     *Pool
	sipRoute *SIPRouter
	tgRoute  *TelegramRouter
	log      *slog.Logger

	// kill is closed when Close's grace is over: every call hangs up.
	kill     chan struct{}
	killOnce sync.Once

	mu      sync.Mutex
	closing bool
	active  sync.WaitGroup
}

// NewTrunk checks the options and builds a trunk; Start begins taking
// calls.
func NewTrunk(opts TrunkOptions) (*Trunk, error) {
	if opts.SIP == nil {
		return nil, errors.New("b2bua: trunk without a SIP server")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Media.Logger == nil {
		opts.Media.Logger = opts.Logger
	}
	pa := make([]PoolAccount, len(opts.Accounts))
	for i, a := range opts.Accounts {
		pa[i] = a
	}
	pool, err := NewPool(pa, opts.Pool)
	if err != nil {
		return nil, err
	}
	sr, err := NewSIPRouter(opts.Routing.SIPToTelegram)
	if err != nil {
		return nil, fmt.Errorf("b2bua: sip_to_telegram: %w", err)
	}
	tr, err := NewTelegramRouter(opts.Routing.TelegramToSIP)
	if err != nil {
		return nil, fmt.Errorf("b2bua: telegram_to_sip: %w", err)
	}
	return &Trunk{
		opts:     opts,
		sip:      opts.SIP,
		pool:     pool,
		sipRoute: sr,
		tgRoute:  tr,
		log:      opts.Logger,
		kill:     make(chan struct{}),
	}, nil
}

// Pool is the trunk's account pool (for status displays).
func (t *Trunk) Pool() *Pool { return t.pool }

// Start installs the SIP handler and starts the SIP server.
func (t *Trunk) Start() error {
	t.sip.OnCall(t.onSIPCall)
	if err := t.sip.Start(); err != nil {
		return fmt.Errorf("b2bua: start: %w", err)
	}
	return nil
}

// begin registers a new call unless the trunk is closing.
func (t *Trunk) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.active.Add(1)
	return true
}

// onSIPCall takes an INVITE from the PBX.
func (t *Trunk) onSIPCall(in *sip.InboundCall) {
	if !t.begin() {
		rejectSIP(in, ErrShuttingDown)
		return
	}
	go func() {
		defer t.active.Done()
		t.sipToTelegram(in)
	}()
}

// Incoming takes a Telegram call that reached acc (the account's
// tgcall.Options.OnIncoming calls it).
func (t *Trunk) Incoming(acc Account, tc *tgcall.Call) {
	if !t.begin() {
		tc.HangupWith(OutcomeShuttingDown.Discard())
		return
	}
	go func() {
		defer t.active.Done()
		t.telegramToSIP(acc, tc)
	}()
}

// Close drains the trunk: new calls are refused (503 on SIP, busy on
// Telegram), active calls go on until they end or ctx ends or the grace
// passes, then the rest are hung up properly on both legs, and the SIP
// server closes.
func (t *Trunk) Close(ctx context.Context) error {
	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		t.active.Wait()
		close(idle)
	}()
	grace := time.NewTimer(t.opts.Grace)
	defer grace.Stop()
	select {
	case <-idle:
	case <-grace.C:
	case <-ctx.Done():
	}
	t.killOnce.Do(func() { close(t.kill) })
	<-idle
	return t.sip.Close()
}

// AccountOf adapts a telegram/account Account to the trunk. Its call
// engine's OnIncoming (account.Options.Calls) should hand calls to
// Trunk.Incoming with the adapted account.
func AccountOf(a *account.Account) Account { return accountAdapter{a} }

type accountAdapter struct{ *account.Account }

// Ready: online, not flood-limited, not in a call (account.Available).
func (a accountAdapter) Ready() bool { return a.Available() == nil }

func (a accountAdapter) ResolvePeer(ctx context.Context, p Peer) (tg.InputUserClass, error) {
	peer, err := a.Resolve(ctx, accountTarget(p))
	if err != nil {
		return nil, resolveError(err)
	}
	return peer.Input(), nil
}

// accountTarget writes a routed peer as account.Resolve reads it.
func accountTarget(p Peer) string {
	if p.Kind == PeerUsername {
		return "@" + p.Value
	}
	return p.Value
}

// resolveError marks the account package's "no such user" errors with
// ErrPeerNotFound (404); others (flood waits, network) pass unchanged.
func resolveError(err error) error {
	if errors.Is(err, account.ErrNotTelegramUser) || errors.Is(err, account.ErrUnknownUsername) || errors.Is(err, account.ErrUnknownPeer) {
		return fmt.Errorf("%w: %w", ErrPeerNotFound, err)
	}
	return err
}
