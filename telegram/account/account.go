// Package account runs the trunk's Telegram accounts: one gotd client per
// account with its session in a file of its own, gotd's updates manager in
// front of the call engine (telegram/tgcall), reconnects with back-off,
// peer resolution (+E.164, @username, numeric id), the account's state for
// `tgsip accounts` and the account picker (online, in call, flood wait,
// needs login), and the headless login flows of `tgsip login` (phone code,
// 2FA password, QR code).
//
// In the call flow it sits under the b2bua: the b2bua resolves the SIP
// target with Account.Resolve, leases an Account that is Available, and
// places the call on Account.Engine.
//
// Gaps: the access-hash cache of numeric ids lives in memory only, and
// `tgsip accounts` run as its own process checks sessions and reads the
// flood limits of the state file, but cannot see a running trunk's calls.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Options tune an Account. The zero value works.
type Options struct {
	// Logger receives the account's logs; "account" is added. Default
	// slog.Default().
	Logger *slog.Logger
	// Calls configures the account's call engine (media transport,
	// incoming-call handler, timeouts). Its Logger defaults to Logger.
	Calls tgcall.Options
	// PeerFloodBackoff is how long the account is kept from placing calls
	// after PEER_FLOOD, which carries no duration. Default 24 h (tg2sip's
	// peer_flood_time).
	PeerFloodBackoff time.Duration
	// ReconnectMin and ReconnectMax bound the back-off between attempts to
	// run the client after it failed. Defaults 1 s and 2 min.
	ReconnectMin, ReconnectMax time.Duration
	// Device is what Telegram shows in the account's session list.
	// Default: device "tgsip", the SIP ⇄ Telegram trunk.
	Device telegram.DeviceConfig
	// PeerCache is how many users the account remembers for calls by
	// numeric user id (their access hashes, learnt when it resolved them or
	// they called); the least recently met or used are forgotten first.
	// Default 10,000 (~1.5 MB at most).
	PeerCache int
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Calls.Logger == nil {
		o.Calls.Logger = o.Logger
	}
	if o.PeerFloodBackoff <= 0 {
		o.PeerFloodBackoff = 24 * time.Hour
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = time.Second
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 2 * time.Minute
	}
	if o.Device.DeviceModel == "" {
		o.Device.DeviceModel = "tgsip"
	}
	if o.Device.AppVersion == "" {
		o.Device.AppVersion = "tgsip"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Account is one Telegram account of the trunk. Create it with New,
// register nothing more (the call engine is wired already), Run it, and
// Close it after Run returned.
type Account struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	client telegram.Options // base gotd options (server, key)
	store  *SessionFile
	inv    *invoker
	api    *tg.Client
	disp   tg.UpdateDispatcher
	engine *tgcall.Client
	peers  *peerCache
	limits *limits

	mu       sync.Mutex
	state    State
	self     *tg.User
	lastErr  error
	restarts int
	running  bool
	changed  chan struct{} // closed and replaced at every state change
}

// New checks cfg (server address, public key, API credentials) and
// prepares the account; nothing connects before Run.
func New(cfg Config, opts Options) (*Account, error) {
	opts.setDefaults()
	base, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("account", cfg.Name)
	a := &Account{
		cfg:     cfg,
		opts:    opts,
		log:     log,
		client:  base,
		store:   NewSessionFile(cfg.SessionFile),
		disp:    tg.NewUpdateDispatcher(),
		peers:   newPeerCache(opts.PeerCache),
		state:   StateOffline,
		changed: make(chan struct{}),
	}
	a.limits, err = loadLimits(cfg.SessionFile+".state", opts.Now)
	if err != nil {
		log.Warn("ignoring unreadable state file", "err", err)
		a.limits = newLimits(cfg.SessionFile+".state", opts.Now)
	}
	a.inv = &invoker{a: a}
	a.api = tg.NewClient(a.inv)
	a.engine = tgcall.NewClient(a.api, opts.Calls)
	a.engine.Register(a.disp)
	return a, nil
}

// Name is the account's configured name.
func (a *Account) Name() string { return a.cfg.Name }

// Config is the account's configuration.
func (a *Account) Config() Config { return a.cfg }

// API is the account's Telegram API. It stays valid across reconnects;
// calls fail with ErrOffline while no client is connected.
func (a *Account) API() *tg.Client { return a.api }

// Engine is the account's call engine.
func (a *Account) Engine() *tgcall.Client { return a.engine }

// Dispatcher receives the account's updates after gotd's updates manager
// has ordered them; the call engine is registered on it already. Add
// handlers before Run.
func (a *Account) Dispatcher() tg.UpdateDispatcher { return a.disp }

// SessionFile is the account's session storage.
func (a *Account) SessionFile() *SessionFile { return a.store }

// ErrOffline: the account has no connected client right now.
var ErrOffline = errors.New("account offline")

// invoker sends through the account's current gotd client and records
// flood waits and ended sessions from every answer.
type invoker struct {
	a  *Account
	mu sync.Mutex
	c  *telegram.Client
	// ended cancels the current run when Telegram ends the session.
	ended context.CancelCauseFunc
}

func (i *invoker) set(c *telegram.Client, ended context.CancelCauseFunc) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.c, i.ended = c, ended
}

// Invoke implements tg.Invoker.
func (i *invoker) Invoke(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
	i.mu.Lock()
	c, ended := i.c, i.ended
	i.mu.Unlock()
	if c == nil {
		return ErrOffline
	}
	err := c.Invoke(ctx, input, output)
	if err == nil {
		return nil
	}
	if fw := i.a.limits.note(err, i.a.opts.PeerFloodBackoff); fw != nil {
		i.a.log.Warn("telegram flood limit", "peer_flood", fw.PeerFlood, "wait", fw.Wait, "until", fw.Until)
		return fw
	}
	if isSessionEnded(err) && ended != nil {
		ended(fmt.Errorf("%w: %s", ErrNeedsLogin, Explain(err)))
	}
	return err
}

// Run connects the account and keeps it connected until ctx ends (then it
// returns nil). gotd reconnects a dropped connection by itself; when the
// client as a whole fails, Run starts a new one after a back-off that
// doubles from ReconnectMin to ReconnectMax. Run returns an error wrapping
// ErrNeedsLogin when the account has no session or Telegram ended it, and
// one wrapping ErrSessionCorrupt for an unusable session file: neither
// heals by retrying.
func (a *Account) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("account: already running")
	}
	a.running = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.running = false
		a.mu.Unlock()
	}()

	if ok, err := a.store.Exists(); err != nil {
		a.setState(StateFailed, err)
		return err
	} else if !ok {
		err := fmt.Errorf("account %q: %w: no session file %s", a.cfg.Name, ErrNeedsLogin, a.store.Path())
		a.setState(StateNeedsLogin, err)
		return err
	}
	delay := a.opts.ReconnectMin
	for {
		began := a.opts.Now()
		a.setState(StateConnecting, nil)
		err := a.runOnce(ctx)
		if ctx.Err() != nil {
			a.setState(StateOffline, nil)
			return nil
		}
		switch {
		case errors.Is(err, ErrNeedsLogin):
			a.setState(StateNeedsLogin, err)
			a.log.Error("telegram session ended: log in again with tgsip login", "err", err)
			return err
		case errors.Is(err, ErrSessionCorrupt), errors.Is(err, errConfig):
			a.setState(StateFailed, err)
			return err
		}
		if a.opts.Now().Sub(began) > a.opts.ReconnectMax {
			delay = a.opts.ReconnectMin // it ran for a good while: start over
		}
		a.mu.Lock()
		a.restarts++
		a.mu.Unlock()
		a.setState(StateConnecting, err)
		a.log.Warn("telegram client failed, reconnecting", "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			a.setState(StateOffline, nil)
			return nil
		case <-t.C:
		}
		delay = min(2*delay, a.opts.ReconnectMax)
	}
}

// errConfig marks a failure that only a config change fixes.
var errConfig = errors.New("configuration")

// runOnce runs one gotd client until it fails or ctx ends.
func (a *Account) runOnce(ctx context.Context) error {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	mgr := updates.New(updates.Config{Handler: a.peers.harvest(a.disp)})
	opts := a.client
	opts.SessionStorage = a.store
	opts.UpdateHandler = mgr
	opts.Device = a.opts.Device
	opts.OnSelfError = func(ctx context.Context, err error) error {
		if isSessionEnded(err) {
			return fmt.Errorf("%w: %s", ErrNeedsLogin, Explain(err))
		}
		return nil
	}
	// gotd re-establishes a dropped connection by itself (mgr.Run goes
	// on), so the connection's own state moves the account between
	// connecting and online once the updates manager has started.
	var started atomic.Bool
	opts.OnConnectionState = func(s telegram.ConnectionState) {
		switch s {
		case telegram.ConnectionStateDisconnected:
			a.setState(StateConnecting, nil)
		case telegram.ConnectionStateReady:
			if started.Load() {
				a.setState(StateOnline, nil)
			}
		}
	}
	c := telegram.NewClient(a.cfg.APIID, a.cfg.APIHash, opts)
	a.inv.set(c, cancel)
	defer a.inv.set(nil, nil)
	err := c.Run(runCtx, func(ctx context.Context) error {
		st, err := c.Auth().Status(ctx)
		if err != nil {
			return fmt.Errorf("auth status: %w", err)
		}
		if !st.Authorized {
			return fmt.Errorf("account %q: %w: the session in %s is not logged in", a.cfg.Name, ErrNeedsLogin, a.store.Path())
		}
		a.mu.Lock()
		a.self = st.User
		a.mu.Unlock()
		a.peers.addUser(st.User)
		if err := a.engine.Start(ctx); err != nil {
			return err
		}
		return mgr.Run(ctx, a.api, st.User.ID, updates.AuthOptions{
			OnStart: func(context.Context) {
				started.Store(true)
				a.setState(StateOnline, nil)
				a.log.Info("telegram account online", "user_id", st.User.ID)
			},
		})
	})
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil && errors.Is(cause, ErrNeedsLogin) {
		return cause
	}
	if err != nil && isSessionEnded(err) {
		return fmt.Errorf("%w: %s", ErrNeedsLogin, Explain(err))
	}
	return err
}

// Close ends the account's calls. Call it after Run has returned.
func (a *Account) Close() error { return a.engine.Close() }

func (a *Account) setState(s State, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// A disconnect notice must not hide a final state.
	if s == StateConnecting && err == nil && (a.state == StateNeedsLogin || a.state == StateFailed) {
		return
	}
	a.state = s
	if err != nil || s == StateOnline {
		a.lastErr = err
	}
	close(a.changed)
	a.changed = make(chan struct{})
}

// Changed returns a channel closed at the account's next state change
// (then read Status again).
func (a *Account) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}
