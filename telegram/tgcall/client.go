package tgcall

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/wire"
)

// Client is the call engine of one Telegram account. It is safe for
// concurrent use; each of its calls runs on its own loop.
type Client struct {
	api  *tg.Client
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	self     int64
	timeouts Timeouts
	dh       *dhCache
	calls    map[int64]*Call     // by Telegram call id
	active   map[*Call]struct{}  // calls not yet ended, including ones without an id
	orphans  map[int64]*orphan   // updates for ids not known yet (outgoing request in flight)
	ended    map[int64]time.Time // recently ended ids, so replayed updates do not revive them
	closed   bool
	wg       sync.WaitGroup

	// prepared is the key pair for the next call (prepared.go);
	// preparing is set while one is being made.
	prepared  *preparedKey
	preparing bool
	// life ends at Close: background work of the client (prepared keys).
	life context.Context
	stop context.CancelFunc
}

// orphan holds updates that arrived for a call id before the call knew its
// id: gotd delivers updates concurrently with the RPC result
// (research/tgcalls.md §1.7), so updatePhoneCall(Waiting/Accepted/Discarded)
// can beat the phone.requestCall response.
type orphan struct {
	at     time.Time
	events []any
}

const (
	orphanTTL   = 30 * time.Second
	orphanLimit = 32 // events kept per unknown id
)

// NewClient returns the call engine of the account behind api. Call Start
// before Dial, and route the account's updates to it with Register.
func NewClient(api *tg.Client, opts Options) *Client {
	opts.setDefaults()
	life, stop := context.WithCancel(context.Background())
	return &Client{
		life:    life,
		stop:    stop,
		api:     api,
		opts:    opts,
		log:     opts.Logger,
		dh:      &dhCache{},
		calls:   make(map[int64]*Call),
		active:  make(map[*Call]struct{}),
		orphans: make(map[int64]*orphan),
		ended:   make(map[int64]time.Time),
	}
}

// Start reads the account's identity and Telegram's call timeouts
// (help.getConfig call_*_timeout_ms). It must succeed before Dial.
func (c *Client) Start(ctx context.Context) error {
	users, err := c.api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
	if err != nil {
		return fmt.Errorf("tgcall: get self: %w", err)
	}
	if len(users) == 0 {
		return fmt.Errorf("tgcall: get self: empty result")
	}
	self, ok := users[0].(*tg.User)
	if !ok {
		return fmt.Errorf("tgcall: get self: unexpected %T", users[0])
	}
	cfg, err := c.api.HelpGetConfig(ctx)
	if err != nil {
		return fmt.Errorf("tgcall: get config: %w", err)
	}
	t := Timeouts{
		Receive: time.Duration(cfg.CallReceiveTimeoutMs) * time.Millisecond,
		Ring:    time.Duration(cfg.CallRingTimeoutMs) * time.Millisecond,
		Connect: time.Duration(cfg.CallConnectTimeoutMs) * time.Millisecond,
		Packet:  time.Duration(cfg.CallPacketTimeoutMs) * time.Millisecond,
	}
	// tgcalls V2 ignores call_connect_timeout_ms and gives up after 20 s
	// (NativeNetworkingImpl::checkConnectionTimeout): never wait less.
	if t.Connect < 20*time.Second {
		t.Connect = 20 * time.Second
	}
	t = t.merge(c.opts.Timeouts).orDefaults()
	c.mu.Lock()
	c.self = self.ID
	c.timeouts = t
	c.mu.Unlock()
	c.prepareKey()
	c.log.Debug("call engine ready", "self", self.ID,
		"receive_timeout", t.Receive, "ring_timeout", t.Ring, "connect_timeout", t.Connect)
	return nil
}

// Self is the account's user id (after Start).
func (c *Client) Self() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.self
}

// ActiveCalls is how many calls the account carries (placed, ringing or
// connected, until they are Done).
func (c *Client) ActiveCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active)
}

// Register routes the account's call updates to the engine.
func (c *Client) Register(d tg.UpdateDispatcher) {
	d.OnPhoneCall(func(ctx context.Context, _ tg.Entities, u *tg.UpdatePhoneCall) error {
		c.HandlePhoneCall(u.PhoneCall)
		return nil
	})
	d.OnPhoneCallSignalingData(func(ctx context.Context, _ tg.Entities, u *tg.UpdatePhoneCallSignalingData) error {
		c.HandleSignalingData(u.PhoneCallID, u.Data)
		return nil
	})
}

// HandlePhoneCall takes one updatePhoneCall. It never blocks.
func (c *Client) HandlePhoneCall(pc tg.PhoneCallClass) {
	id := pc.GetID()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if call, ok := c.calls[id]; ok {
		c.mu.Unlock()
		call.box.post(evUpdate{pc})
		return
	}
	if _, ok := c.ended[id]; ok {
		c.mu.Unlock()
		return
	}
	req, ok := pc.(*tg.PhoneCallRequested)
	if !ok {
		c.orphanLocked(id, evUpdate{pc})
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.incoming(req)
}

// HandleSignalingData takes one updatePhoneCallSignalingData. It never blocks.
func (c *Client) HandleSignalingData(id int64, data []byte) {
	c.mu.Lock()
	call, ok := c.calls[id]
	if !ok {
		if _, gone := c.ended[id]; !gone && !c.closed {
			c.orphanLocked(id, evSignal{data})
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	call.box.post(evSignal{data})
}

func (c *Client) orphanLocked(id int64, ev any) {
	now := time.Now()
	for k, o := range c.orphans {
		if now.Sub(o.at) > orphanTTL {
			delete(c.orphans, k)
		}
	}
	o := c.orphans[id]
	if o == nil {
		o = &orphan{at: now}
		c.orphans[id] = o
	}
	if len(o.events) < orphanLimit {
		o.events = append(o.events, ev)
	}
}

// bind gives call its Telegram id and replays what arrived for it early.
func (c *Client) bind(call *Call, id int64) {
	c.mu.Lock()
	c.calls[id] = call
	o := c.orphans[id]
	delete(c.orphans, id)
	c.mu.Unlock()
	if o != nil {
		for _, ev := range o.events {
			call.box.post(ev)
		}
	}
}

// release forgets an ended call.
func (c *Client) release(call *Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.active, call)
	if call.id != 0 {
		delete(c.calls, call.id)
		now := time.Now()
		for k, at := range c.ended {
			if now.Sub(at) > c.timeouts.Ring+time.Minute {
				delete(c.ended, k)
			}
		}
		c.ended[call.id] = now
	}
}

// admit reserves a slot for a new call.
func (c *Client) admit(call *Call) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.self == 0 {
		return fmt.Errorf("tgcall: client not started")
	}
	if len(c.active) >= c.opts.MaxCalls {
		return ErrBusy
	}
	c.active[call] = struct{}{}
	c.wg.Add(1)
	return nil
}

// DialOption adjusts one call placed with Dial.
type DialOption func(*Call)

// WithLogger makes the call log through l (for example a logger that
// already carries the other leg's call identifier); call_id and peer are added to it.
func WithLogger(l *slog.Logger) DialOption {
	return func(call *Call) { call.log = l.With("direction", "out") }
}

// Dial places a call to user and returns once Telegram accepted the request
// (phoneCallWaiting). Progress is then reported by the Call: Ringing when the
// callee's device rings, Connected when media flows, Done with the outcome.
// Cancelling ctx before Dial returns cancels the call.
func (c *Client) Dial(ctx context.Context, user tg.InputUserClass, opts ...DialOption) (*Call, error) {
	call := c.newCall(true)
	for _, o := range opts {
		o(call)
	}
	if err := c.admit(call); err != nil {
		return nil, err
	}
	call.peerInput = user
	go call.run()
	call.box.post(evDial{})
	select {
	case <-call.requested:
		if call.requestErr != nil {
			<-call.done
			return nil, call.requestErr
		}
		return call, nil
	case <-ctx.Done():
		call.Hangup()
		<-call.done
		return nil, ctx.Err()
	}
}

// incoming starts the callee side of a phoneCallRequested.
func (c *Client) incoming(req *tg.PhoneCallRequested) {
	c.mu.Lock()
	self, ring := c.self, c.timeouts.Ring
	c.mu.Unlock()
	log := c.log.With("call_id", req.ID, "peer", req.AdminID, "direction", "in")
	// Sanity checks of tdesktop Calls::Instance::handleCallUpdate.
	if req.ParticipantID != self || len(req.GAHash) != 32 {
		log.Warn("ignoring malformed phoneCallRequested", "participant", req.ParticipantID, "g_a_hash_len", len(req.GAHash))
		return
	}
	if time.Unix(int64(req.Date), 0).Add(ring).Before(time.Now()) {
		log.Info("ignoring stale phoneCallRequested", "date", req.Date)
		return
	}
	call := c.newCall(false)
	call.id = req.ID
	call.accessHash = req.AccessHash
	call.peer = req.AdminID
	call.request = req
	call.log = log
	if err := c.admit(call); err != nil {
		// Busy (or closing): decline without ringing, as tdesktop does.
		log.Info("declining incoming call", "err", err)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
			defer cancel()
			_, err := c.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
				Peer:   tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash},
				Reason: &tg.PhoneCallDiscardReasonBusy{},
			})
			if err != nil {
				log.Warn("decline busy call", "err", err)
			}
		}()
		c.mu.Lock()
		c.ended[req.ID] = time.Now()
		c.mu.Unlock()
		return
	}
	c.bind(call, req.ID)
	go call.run()
	call.box.post(evIncoming{})
}

// Close hangs up every call and waits for their loops to end.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	calls := make([]*Call, 0, len(c.active))
	for call := range c.active {
		calls = append(calls, call)
	}
	c.prepared = nil
	c.mu.Unlock()
	c.stop()
	for _, call := range calls {
		call.Hangup()
	}
	c.wg.Wait()
	return nil
}

// dhCache keeps the last DH group (messages.getDhConfig is versioned, so a
// repeated request returns dhConfigNotModified with a fresh random).
type dhCache struct {
	mu      sync.Mutex
	cfg     wire.DHConfig
	version int
}

// get returns the DH group and 256 bytes of server randomness to mix into
// the exponent (core.telegram.org/api/end-to-end/video-calls).
func (d *dhCache) get(ctx context.Context, api *tg.Client) (wire.DHConfig, []byte, error) {
	d.mu.Lock()
	version := d.version
	d.mu.Unlock()
	res, err := api.MessagesGetDhConfig(ctx, &tg.MessagesGetDhConfigRequest{Version: version, RandomLength: 256})
	if err != nil {
		return wire.DHConfig{}, nil, fmt.Errorf("get dh config: %w", err)
	}
	switch r := res.(type) {
	case *tg.MessagesDhConfig:
		cfg, err := wire.ParseDHConfig(r.G, r.P)
		if err != nil {
			return wire.DHConfig{}, nil, fmt.Errorf("dh config: %w", err)
		}
		d.mu.Lock()
		d.cfg, d.version = cfg, r.Version
		d.mu.Unlock()
		return cfg, r.Random, nil
	case *tg.MessagesDhConfigNotModified:
		d.mu.Lock()
		cfg := d.cfg
		d.mu.Unlock()
		if cfg.P == nil {
			return wire.DHConfig{}, nil, fmt.Errorf("dh config: not modified before first config")
		}
		return cfg, r.Random, nil
	default:
		return wire.DHConfig{}, nil, fmt.Errorf("dh config: unexpected %T", res)
	}
}

func randomInt32(c *Client) int32 {
	var b [4]byte
	if _, err := c.opts.Random.Read(b[:]); err != nil {
		_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux; a broken custom reader falls back to it
	}
	return int32(binary.LittleEndian.Uint32(b[:]) & 0x7fffffff)
}
