package tgcall

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/wire"
)

// earlyLimit bounds the signaling packets buffered before the call's keys
// exist; V2 retransmission recovers anything beyond it (research/tgcalls.md §1.7).
const earlyLimit = 64

// sendQueueLimit bounds the signaling packets waiting for
// phone.sendSignalingData; beyond it a packet is left to the
// EncryptedConnection's retransmission.
const sendQueueLimit = 256

// signaling is the V2 signaling channel of one call: the EncryptedConnection
// state (telegram/wire) driven by the call loop, and a sender that hands
// packets to phone.sendSignalingData in order. The sender is a goroutine
// that runs only while packets wait: a connected call sends signaling
// rarely (acks, the odd candidate), and an idle goroutine per call would
// cost its stack (≥ 8 KiB) for the whole call.
type signaling struct {
	call   *Call
	conn   *wire.Connection
	timer  *time.Timer
	ctx    context.Context
	cancel context.CancelFunc
	peer   tg.InputPhoneCall // for the sender: loop-owned fields copied
	log    *slog.Logger

	mu      sync.Mutex
	queue   [][]byte
	sending bool // a sender goroutine is draining queue
}

func newSignaling(call *Call, key *wire.Key, outgoing bool) *signaling {
	ctx, cancel := context.WithCancel(call.ctx)
	s := &signaling{
		call:   call,
		conn:   wire.NewConnection(key, outgoing),
		timer:  time.NewTimer(time.Hour),
		ctx:    ctx,
		cancel: cancel,
		peer:   call.input(),
		log:    call.log,
	}
	s.timer.Stop()
	return s
}

func (s *signaling) wake() <-chan time.Time { return s.timer.C }

func (s *signaling) close() {
	s.cancel()
	s.timer.Stop()
}

// transmit queues packets for the sender and starts it if it is not
// running. Only the call's loop calls it, and never after close, so the
// sender is always counted in call.rpcs before teardown waits for them.
func (s *signaling) transmit(pkts [][]byte) {
	if len(pkts) == 0 || s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	for _, p := range pkts {
		if len(s.queue) >= sendQueueLimit {
			s.call.log.Debug("signaling queue full, packet left to retransmission")
			break
		}
		s.queue = append(s.queue, p)
	}
	start := !s.sending
	s.sending = true
	s.mu.Unlock()
	if start {
		s.call.rpcs.Add(1)
		go s.drain()
	}
}

// drain is the sender goroutine: it sends the queued packets one at a
// time, in order, and ends when the queue is empty or the call is closing.
func (s *signaling) drain() {
	defer s.call.rpcs.Done()
	api, log := s.call.client.api, s.log
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.ctx.Err() != nil {
			s.queue = nil
			s.sending = false
			s.mu.Unlock()
			return
		}
		pkt := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		_, err := api.PhoneSendSignalingData(s.ctx, &tg.PhoneSendSignalingDataRequest{Peer: s.peer, Data: pkt})
		if err != nil && s.ctx.Err() == nil {
			// Lost packets are resent by the EncryptedConnection.
			log.Debug("send signaling", "err", err)
		}
	}
}

// schedule re-arms the resend/ack timer for the next deadline.
func (s *signaling) schedule(next time.Time) {
	s.timer.Stop()
	select {
	case <-s.timer.C:
	default:
	}
	if next.IsZero() {
		return
	}
	d := time.Until(next)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	s.timer.Reset(d)
}

func (s *signaling) poll(now time.Time) {
	pkts, next := s.conn.Poll(now)
	s.transmit(pkts)
	s.schedule(next)
}

func (s *signaling) send(msg []byte) {
	now := time.Now()
	pkts, err := s.conn.Send(msg, now)
	if err != nil {
		s.call.log.Warn("signaling send", "err", err)
		return
	}
	s.transmit(pkts)
	_, next := s.conn.Poll(now)
	s.schedule(next)
}

// receive decrypts one packet and returns the JSON messages it delivered.
func (s *signaling) receive(data []byte) [][]byte {
	now := time.Now()
	msgs, out, err := s.conn.Receive(data, now)
	if err != nil {
		// Bad input from the network is normal: drop it and count on
		// the peer's retransmission.
		s.call.log.Debug("dropping signaling packet", "err", err)
	}
	s.transmit(out)
	_, next := s.conn.Poll(now)
	s.schedule(next)
	return msgs
}

// flushEarly replays signaling that arrived before the keys.
func (s *signaling) flushEarly() {
	early := s.call.early
	s.call.early = nil
	for _, data := range early {
		s.call.onSignal(data)
	}
}

// onSignal handles one updatePhoneCallSignalingData.
func (call *Call) onSignal(data []byte) {
	if call.state >= stateEnding {
		return
	}
	if call.sig == nil {
		if len(call.early) < earlyLimit {
			call.early = append(call.early, data)
		}
		return
	}
	for _, raw := range call.sig.receive(data) {
		msg, err := wire.UnmarshalMessage(raw)
		if err != nil {
			call.log.Debug("ignoring signaling message", "err", err)
			continue
		}
		call.onMessage(msg)
		if call.state >= stateEnding {
			return
		}
	}
}

func (call *Call) onMessage(msg any) {
	switch m := msg.(type) {
	case *wire.InitialSetup:
		call.onInitialSetup(m)
	case *wire.Candidates:
		for _, c := range m.Candidates {
			if !call.remoteSet {
				call.pendingCands = append(call.pendingCands, c.SDPString)
				continue
			}
			call.addCandidate(c.SDPString)
		}
	case *wire.NegotiateChannels:
		if reply := call.neg.handle(m); reply != nil {
			call.sendMessage(reply)
		}
		call.sendOffer()
		call.applyNegotiation()
		call.maybeActive()
	case *wire.MediaState:
		call.onRemoteState(m)
	}
}

func (call *Call) addCandidate(sdp string) {
	if err := call.media.AddRemoteCandidate(sdp); err != nil {
		call.log.Debug("ignoring remote candidate", "candidate", sdp, "err", err)
	}
}

// onInitialSetup applies the peer's ICE credentials and DTLS fingerprints
// and commits the candidates queued until then (tgcalls InstanceV2Impl
// processSignalingData).
func (call *Call) onInitialSetup(m *wire.InitialSetup) {
	if call.remoteSet {
		return
	}
	fps := make([]media.Fingerprint, 0, len(m.Fingerprints))
	for _, f := range m.Fingerprints {
		fps = append(fps, media.Fingerprint{Hash: f.Hash, Setup: f.Setup, Value: f.Fingerprint})
	}
	if err := call.media.SetRemote(media.RemoteParameters{Ufrag: m.Ufrag, Pwd: m.Pwd, Fingerprints: fps}); err != nil {
		call.fail(&Error{Cause: CauseProtocol, Err: err})
		return
	}
	call.remoteSet = true
	for _, c := range call.pendingCands {
		call.addCandidate(c)
	}
	call.pendingCands = nil
	// tgcalls processSignalingData(InitialSetup): the caller (re)sends its
	// offer if still needed, the callee answers with its own InitialSetup.
	if call.outgoing {
		call.sendOffer()
	} else {
		call.sendInitialSetup("passive")
	}
}

func (call *Call) sendInitialSetup(setup string) {
	p := call.media.LocalParameters()
	call.sendMessage(&wire.InitialSetup{
		Ufrag:        p.Ufrag,
		Pwd:          p.Pwd,
		Renomination: p.Renomination, // what our ICE agent does (media.Parameters)
		Fingerprints: []wire.Fingerprint{{
			Hash: "sha-256", Setup: setup, Fingerprint: p.Fingerprint,
		}},
	})
}

func (call *Call) sendOffer() {
	if offer := call.neg.offer(); offer != nil {
		call.sendMessage(offer)
	}
}

// onRemoteState takes the peer's MediaState, from signaling or from the
// data channel (tgcalls parses both, and sends on the channel).
func (call *Call) onRemoteState(m *wire.MediaState) {
	call.remoteState = *m
	if conn := call.Conn(); conn != nil {
		conn.setRemoteState(*m)
	}
}

// sendMediaState tells the peer our audio state; video is always inactive
// for an audio-only trunk, and videoState is always sent with videoRotation
// (tgcalls v2/Signaling.cpp reads the rotation through the state field).
// Like tgcalls (sendMediaState needs _isDataChannelOpen) it goes only on the
// data channel, and is sent when the channel opens: one channel keeps the
// states in order, where a copy on signaling could arrive after a newer one.
func (call *Call) sendMediaState() {
	if !call.dataUp {
		return
	}
	raw, err := wire.MarshalMessage(&wire.MediaState{
		Muted:           call.muted,
		VideoState:      "inactive",
		VideoRotation:   0,
		ScreencastState: "inactive",
	})
	if err == nil {
		err = call.media.SendData(string(raw))
	}
	if err != nil {
		call.log.Debug("sending media state", "err", err)
	}
}

func (call *Call) sendMessage(m any) {
	if call.sig == nil || call.state >= stateEnding {
		return
	}
	raw, err := wire.MarshalMessage(m)
	if err != nil {
		call.log.Error("marshal signaling message", "err", err)
		return
	}
	call.sig.send(raw)
}

// applyNegotiation hands the negotiated RTP parameters to the media session.
func (call *Call) applyNegotiation() {
	if call.neg.out != nil {
		call.media.SetRTPExtensions(call.neg.out.absSendTime, call.neg.out.transportCC)
	}
	if conn := call.Conn(); conn != nil {
		conn.setAudio(call.neg.audio())
	}
}
