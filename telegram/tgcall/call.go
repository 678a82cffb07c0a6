package tgcall

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/wire"
)

// hangupTimeout bounds phone.discardCall (tdesktop Call::finish kHangupTimeoutMs).
const hangupTimeout = 5 * time.Second

// state is where a call is in the tdlib/tdesktop state machine
// (research/tgcalls.md §1.2–1.4).
type state int

const (
	stateNew        state = iota
	stateRequesting       // outgoing: phone.requestCall in flight
	stateWaiting          // outgoing: phoneCallWaiting, callee device not reached yet
	stateRinging          // callee device rings (both directions)
	stateAccepting        // incoming: acceptCall sent, waiting for phoneCall (g_a)
	stateExchanging       // outgoing: phoneCallAccepted, confirmCall in flight
	stateConnecting       // keys verified, media connecting
	stateActive           // media connected
	stateEnding           // discardCall in flight
	stateEnded
)

var stateNames = [...]string{"new", "requesting", "waiting", "ringing", "accepting", "exchanging", "connecting", "active", "ending", "ended"}

func (s state) String() string { return stateNames[s] }

// Events of a call's loop.
type (
	evDial     struct{}
	evIncoming struct{}
	evAccept   struct{}
	evHangup   struct{ reason DiscardReason }
	evUpdate   struct{ pc tg.PhoneCallClass }
	evSignal   struct{ data []byte }
	evRPC      struct {
		name string
		res  any
		err  error
	}
	evCandidate struct{ sdp string }
	evData      struct{ msg string }
	evMuted     struct{ muted bool }
)

// Call is one Telegram 1:1 call, outgoing (from Dial) or incoming (from
// Options.OnIncoming). Its methods are safe for concurrent use.
type Call struct {
	client   *Client
	outgoing bool
	box      *mailbox
	log      *slog.Logger

	ringing   chan struct{}
	connected chan struct{}
	done      chan struct{}
	requested chan struct{} // outgoing: closed when requestCall resolved
	mu        sync.Mutex
	result    *Error
	conn      *Conn
	emojis    [4]string

	// Loop-owned state: touched only by run and the handlers it calls.
	state        state
	id           int64
	accessHash   int64
	peer         int64
	peerInput    tg.InputUserClass
	request      *tg.PhoneCallRequested // incoming
	requestErr   error
	hangupWant   bool          // Hangup came while an RPC had to finish first
	received     chan struct{} // incoming: closed when phone.receivedCall returned
	dh           wire.DHConfig
	secret       *big.Int
	gA           []byte // caller: our g_a; callee: the caller's g_a
	gB           []byte // callee: our g_b (set from a prepared key, or computed at acceptCall)
	gAHash       []byte
	key          *wire.Key
	sig          *signaling
	neg          *negotiator
	media        *media.Session
	remoteSet    bool
	pendingCands []string
	early        [][]byte // signaling that came before the keys
	mediaUp      bool
	rang         bool // Ringing is closed
	dataUp       bool // the data channel is open
	remoteState  wire.MediaState
	startedAt    time.Time // media connected
	muted        bool
	timer        *time.Timer
	rpcs         sync.WaitGroup
	ctx          context.Context
	cancel       context.CancelFunc
}

func (c *Client) newCall(outgoing bool) *Call {
	ctx, cancel := context.WithCancel(context.Background())
	call := &Call{
		client:    c,
		outgoing:  outgoing,
		box:       newMailbox(),
		ringing:   make(chan struct{}),
		connected: make(chan struct{}),
		done:      make(chan struct{}),
		requested: make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
	}
	call.timer = time.NewTimer(time.Hour)
	call.timer.Stop()
	if outgoing {
		call.log = c.log.With("direction", "out")
	}
	return call
}

// ID is the Telegram call id (0 until phone.requestCall returned).
func (call *Call) ID() int64 {
	call.mu.Lock()
	defer call.mu.Unlock()
	return call.id
}

// Peer is the other party's user id.
func (call *Call) Peer() int64 {
	call.mu.Lock()
	defer call.mu.Unlock()
	return call.peer
}

// Outgoing reports whether we placed the call.
func (call *Call) Outgoing() bool { return call.outgoing }

// Ringing is closed when the callee's device rings: for an outgoing call when
// Telegram reports phoneCallWaiting.receive_date (the callee sent
// phone.receivedCall) or, if that update is overtaken, when the callee
// answers; for an incoming call at once.
func (call *Call) Ringing() <-chan struct{} { return call.ringing }

// Connected is closed when media is connected and our audio is negotiated;
// Conn is usable from then on.
func (call *Call) Connected() <-chan struct{} { return call.connected }

// Done is closed when the call has ended on Telegram and every resource it
// held is released; Err tells why.
func (call *Call) Done() <-chan struct{} { return call.done }

// Err is how the call ended (nil until Done).
func (call *Call) Err() *Error {
	call.mu.Lock()
	defer call.mu.Unlock()
	return call.result
}

// Conn is the media connection (nil until Connected).
func (call *Call) Conn() *Conn {
	call.mu.Lock()
	defer call.mu.Unlock()
	return call.conn
}

// Emojis is the emoji fingerprint both parties see (valid once the keys are
// verified, i.e. from Connected on).
func (call *Call) Emojis() [4]string {
	call.mu.Lock()
	defer call.mu.Unlock()
	return call.emojis
}

// Accept answers an incoming call. The outcome is reported by Connected and Done.
func (call *Call) Accept() { call.box.post(evAccept{}) }

// Decline turns an incoming call down (discarded as busy, which tdlib shows
// as "declined").
func (call *Call) Decline() { call.box.post(evHangup{reason: DiscardBusy}) }

// Hangup ends the call with the reason tdesktop's hangup() picks: missed for
// an unanswered outgoing call, busy for an unanswered incoming one, hangup
// otherwise. It does not wait; use Done.
func (call *Call) Hangup() { call.box.post(evHangup{reason: DiscardNone}) }

// HangupWith ends the call with a given discard reason, for outcomes of the
// other leg that Hangup cannot know: DiscardDisconnect when the other leg
// failed, DiscardBusy when it was busy or declined, DiscardMissed when it was
// never answered. DiscardNone is Hangup.
func (call *Call) HangupWith(reason DiscardReason) { call.box.post(evHangup{reason: reason}) }

// Logger is the call's logger (call_id, peer, direction and the Client's
// own fields), for the other leg to log under the same call.
func (call *Call) Logger() *slog.Logger {
	call.mu.Lock()
	defer call.mu.Unlock()
	return call.log
}

// setLogger replaces the call's logger; only the loop writes it, under mu
// so that Logger may read it from anywhere.
func (call *Call) setLogger(l *slog.Logger) {
	call.mu.Lock()
	call.log = l
	call.mu.Unlock()
}

// run is the call's event loop: the only goroutine touching loop-owned state.
func (call *Call) run() {
	defer call.client.wg.Done()
	var mediaConnected, mediaDone, dataOpen <-chan struct{}
	for call.state != stateEnded {
		mediaConnected, mediaDone, dataOpen = nil, nil, nil
		if call.media != nil && call.state < stateEnding {
			if call.state == stateConnecting && !call.mediaUp {
				mediaConnected = call.media.Connected()
			}
			if !call.dataUp {
				dataOpen = call.media.DataChannelOpen()
			}
			mediaDone = call.media.Done()
		}
		var sigWake <-chan time.Time
		if call.sig != nil {
			sigWake = call.sig.wake()
		}
		select {
		case <-call.box.notify:
			for _, ev := range call.box.take() {
				call.handle(ev)
				if call.state == stateEnded {
					break
				}
			}
		case <-call.timer.C:
			call.onTimeout()
		case <-sigWake:
			call.sig.poll(time.Now())
		case <-mediaConnected:
			call.onMediaConnected()
		case <-dataOpen:
			// tgcalls sends its MediaState when the channel opens
			// (onDataChannelStateUpdated).
			call.dataUp = true
			if call.state == stateActive {
				call.sendMediaState()
			}
		case <-mediaDone:
			err := call.media.Err()
			call.log.Info("media failed", "err", err)
			call.fail(&Error{Cause: CauseDisconnected, Err: err})
		}
	}
	call.teardown()
}

func (call *Call) handle(ev any) {
	switch e := ev.(type) {
	case evDial:
		call.startOutgoing()
	case evIncoming:
		call.startIncoming()
	case evAccept:
		call.onAccept()
	case evHangup:
		call.onHangup(e.reason)
	case evUpdate:
		call.onUpdate(e.pc)
	case evSignal:
		call.onSignal(e.data)
	case evRPC:
		call.onRPC(e)
	case evCandidate:
		call.sendMessage(&wire.Candidates{Candidates: []wire.Candidate{{SDPString: e.sdp}}})
	case evData:
		msg, err := wire.UnmarshalMessage([]byte(e.msg))
		if err != nil {
			call.log.Debug("ignoring data channel message", "err", err)
			return
		}
		if m, ok := msg.(*wire.MediaState); ok {
			call.onRemoteState(m)
		}
	case evMuted:
		call.muted = e.muted
		if call.state == stateActive {
			call.sendMediaState()
		}
	}
}

// arm sets the one state timer.
func (call *Call) arm(d time.Duration) {
	call.timer.Stop()
	select {
	case <-call.timer.C:
	default:
	}
	call.timer.Reset(d)
}

// goRPC runs an RPC off the loop and posts its result back as evRPC.
func (call *Call) goRPC(name string, f func(ctx context.Context) (any, error)) {
	call.rpcs.Add(1)
	go func() {
		defer call.rpcs.Done()
		res, err := f(call.ctx)
		call.box.post(evRPC{name: name, res: res, err: err})
	}()
}

func (call *Call) input() tg.InputPhoneCall {
	return tg.InputPhoneCall{ID: call.id, AccessHash: call.accessHash}
}

func (call *Call) protocolOffer() tg.PhoneCallProtocol {
	return tg.PhoneCallProtocol{
		UDPP2P:          true,
		UDPReflector:    true,
		MinLayer:        wire.MinLayer,
		MaxLayer:        wire.MaxLayer,
		LibraryVersions: call.client.opts.Versions,
	}
}

// dhGroup is the result of the "dhConfig" RPC step.
type dhGroup struct {
	cfg    wire.DHConfig
	random []byte
}

// fetchDH gets the DH group and server randomness (messages.getDhConfig)
// off the loop; onDH makes our secret exponent from them on the loop.
func (call *Call) fetchDH() {
	c := call.client
	call.goRPC("dhConfig", func(ctx context.Context) (any, error) {
		cfg, random, err := c.dh.get(ctx, c.api)
		return dhGroup{cfg, random}, err
	})
}

func (call *Call) onDH(e evRPC) {
	if e.err == nil {
		g := e.res.(dhGroup)
		call.dh = g.cfg
		call.secret, e.err = wire.NewExponent(call.client.opts.Random, g.random)
	}
	switch {
	case call.outgoing && call.state == stateRequesting:
		call.sendRequest(e)
	case !call.outgoing && call.state == stateAccepting:
		call.sendAccept(e)
	}
}

func (call *Call) onRPC(e evRPC) {
	switch e.name {
	case "dhConfig":
		call.onDH(e)
	case "requestCall":
		call.onRequestResult(e)
	case "receivedCall":
		if e.err != nil && call.state == stateRinging {
			// tdlib treats a failed receivedCall as fatal.
			call.fail(rpcError(e.err))
		}
	case "acceptCall":
		if call.state != stateAccepting {
			return
		}
		if e.err != nil {
			call.fail(rpcError(e.err))
			return
		}
		res := e.res.(*tg.PhonePhoneCall)
		switch pc := res.PhoneCall.(type) {
		case *tg.PhoneCallWaiting: // expected (tdesktop requires it)
		case *tg.PhoneCall:
			call.onConfirmedIncoming(pc)
		default:
			call.onUpdate(pc)
		}
	case "confirmCall":
		if call.state != stateExchanging {
			return
		}
		if e.err != nil {
			call.fail(rpcError(e.err))
			return
		}
		res := e.res.(*tg.PhonePhoneCall)
		pc, ok := res.PhoneCall.(*tg.PhoneCall)
		if !ok {
			call.onUpdate(res.PhoneCall)
			return
		}
		call.onConfirmedOutgoing(pc)
	case "discardCall":
		if e.err != nil {
			call.log.Warn("discard call", "err", e.err)
		}
		call.state = stateEnded
	}
}

func (call *Call) onConfirmedOutgoing(pc *tg.PhoneCall) {
	if call.state != stateExchanging {
		return
	}
	call.startMedia(pc)
}

func (call *Call) onUpdate(pc tg.PhoneCallClass) {
	switch p := pc.(type) {
	case *tg.PhoneCallWaiting:
		if call.outgoing && call.state == stateWaiting {
			if _, ok := p.GetReceiveDate(); ok {
				call.state = stateRinging
				call.arm(call.client.timeouts.Ring)
				call.markRinging()
				call.log.Info("callee ringing")
			}
		}
	case *tg.PhoneCallAccepted:
		if call.outgoing && call.checkCommon(p.AdminID, p.ParticipantID, p.AccessHash) {
			call.onAccepted(p)
		}
	case *tg.PhoneCall:
		if !call.checkCommon(p.AdminID, p.ParticipantID, p.AccessHash) {
			return
		}
		if call.outgoing {
			call.onConfirmedOutgoing(p)
		} else {
			call.onConfirmedIncoming(p)
		}
	case *tg.PhoneCallDiscarded:
		if call.state >= stateEnding {
			return
		}
		call.finishRemote(p)
	case *tg.PhoneCallEmpty, *tg.PhoneCallRequested:
		// Repeats of what we know (getDifference replays): ignore.
	}
}

// markRinging closes Ringing once. An answer implies the callee's device
// rang: gotd delivers updates concurrently, so phoneCallAccepted can come
// before the phoneCallWaiting that carried receive_date.
func (call *Call) markRinging() {
	if !call.rang {
		call.rang = true
		close(call.ringing)
	}
}

// checkCommon is tdesktop checkCallCommonFields.
func (call *Call) checkCommon(admin, participant, accessHash int64) bool {
	self := call.client.self
	ok := accessHash == call.accessHash
	if call.outgoing {
		ok = ok && admin == self && participant == call.peer
	} else {
		ok = ok && admin == call.peer && participant == self
	}
	if !ok {
		call.log.Warn("ignoring phoneCall update with wrong fields")
	}
	return ok
}

// startMedia checks what the peer selected, verifies the key and starts
// signaling and media (research/tgcalls.md §1.2 step 5, §3).
func (call *Call) startMedia(pc *tg.PhoneCall) {
	if pc.KeyFingerprint != call.key.Fingerprint() {
		call.fail(&Error{Cause: CauseProtocol, Err: fmt.Errorf("%w: key fingerprint", ErrKeyMismatch)})
		return
	}
	if err := checkSelected(pc, call.client.opts.Versions, call.log); err != nil {
		call.fail(&Error{Cause: CauseProtocol, Err: err})
		return
	}
	call.mu.Lock()
	call.emojis = wire.EmojiFingerprint(call.key, call.gA)
	call.mu.Unlock()

	cfg := media.Config{
		Transport:  call.client.opts.Transport,
		Outgoing:   call.outgoing,
		P2PAllowed: pc.P2PAllowed,
		Reflectors: reflectors(pc.Connections, call.log),
		ICEServers: iceServers(pc.Connections),
		// Bounds connecting and, once connected, how long media may stay
		// interrupted before the call is dropped.
		ConnectTimeout: call.client.timeouts.Connect,
		Logger:         call.log,
	}
	if cfg.Transport == nil {
		cfg.Transport = &media.Transport{}
	}
	sess, err := media.New(cfg)
	if err != nil {
		call.fail(&Error{Cause: CauseInternal, Err: fmt.Errorf("media: %w", err)})
		return
	}
	call.media = sess
	call.sig = newSignaling(call, call.key, call.outgoing)
	call.neg = newNegotiator(call.outgoing, call.client.opts.Random)
	box := call.box
	sess.OnCandidate(func(sdp string) { box.post(evCandidate{sdp}) })
	sess.OnData(func(msg string) { box.post(evData{msg}) })
	if err := sess.Start(); err != nil {
		call.fail(&Error{Cause: CauseInternal, Err: fmt.Errorf("media: %w", err)})
		return
	}
	call.state = stateConnecting
	call.arm(call.client.timeouts.Connect)
	call.log.Info("keys verified, connecting media",
		"version", pc.Protocol.LibraryVersions[0], "p2p", pc.P2PAllowed, "connections", len(pc.Connections))
	if call.outgoing {
		// tgcalls beginSignaling: the caller opens with InitialSetup
		// (setup "actpass") and, in current builds, its offer.
		call.sendInitialSetup("actpass")
		call.sendOffer()
	}
	call.sig.flushEarly()
}

func (call *Call) onMediaConnected() {
	if call.state != stateConnecting {
		return
	}
	call.mediaUp = true
	call.maybeActive()
}

// maybeActive enters stateActive once media is connected and our outgoing
// audio channel is negotiated.
func (call *Call) maybeActive() {
	if call.state != stateConnecting || !call.mediaUp || call.neg.out == nil {
		return
	}
	call.state = stateActive
	call.timer.Stop()
	call.startedAt = time.Now()
	call.mu.Lock()
	call.conn = newConn(call, call.media, call.neg.audio())
	call.conn.remoteState = call.remoteState
	call.mu.Unlock()
	call.sendMediaState()
	close(call.connected)
	call.log.Info("call connected", "emoji", call.emojis)
}
