package rtpendpoint

import (
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/sip/sdp"
)

// ErrClosed is returned by ReadRTP, WriteRTP and Update after Close. It
// wraps net.ErrClosed.
var ErrClosed = fmt.Errorf("rtpendpoint: endpoint closed: %w", net.ErrClosed)

// DefaultRTCPInterval is the report interval when Options gives none: RFC
// 3550 §6.2's recommended minimum of 5 s.
const DefaultRTCPInterval = 5 * time.Second

// bufSize bounds the datagrams the endpoint reads: more than any Ethernet
// MTU, so nothing real is truncated.
const bufSize = 2048

// Options tune an endpoint; the zero value is usable.
type Options struct {
	// Latch enables symmetric RTP: send to, and accept from, the source of
	// the first authenticated packet instead of the negotiated address
	// (for phones behind NAT; configured per trunk).
	Latch bool
	// RTCPInterval is the mean report interval, DefaultRTCPInterval when 0.
	// A negative interval sends no reports (incoming RTCP is still read).
	RTCPInterval time.Duration
	// Scheduler drives the reports; nil starts a private one for this
	// endpoint (one goroutine). Share one between all calls.
	Scheduler *Scheduler
	// Poller, if set, reads the RTP socket while the endpoint pushes
	// (PushRTP), shared with other endpoints; nil: a goroutine of the
	// endpoint's own reads it. See Poller.
	Poller *Poller
	// CNAME is our RTCP canonical name (RFC 3550 §6.5.1), random when "".
	CNAME string
	// Logger gets debug lines on key and address changes; slog.Default()
	// when nil. Keys are never logged.
	Logger *slog.Logger
}

// state is what the packet paths read on every packet, published as one
// immutable value (Update, latching and the end of a rekey replace it with
// CompareAndSwap), so the paths take no lock to read it.
type state struct {
	remote, remoteRTCP netip.AddrPort // as negotiated
	// dst and dstRTCP are where we send, and the only sources we accept
	// while no latch is pending: the negotiated addresses or the latched
	// ones.
	dst, dstRTCP netip.AddrPort
	// prevSrc is the peer's address before an Update moved it, accepted
	// until the first packet from dst (invalid when none).
	prevSrc netip.AddrPort
	// latch and latchRTCP: the next authenticated RTP (RTCP) packet from
	// any source sets dst (dstRTCP).
	latch, latchRTCP bool
	mux              bool
	sends            bool
	clock            uint32
	codecPT, dtmfPT  int // -1 for none

	// rx is the current receive keys (nil: plain RTP). While hasPrev,
	// prev (possibly nil: plain) is also accepted until a packet
	// authenticates under rx.
	rx, prev *cryptoPair
	hasPrev  bool
	tx       *cryptoPair // send keys, nil: plain RTP
}

// Endpoint is the RTP endpoint of one SIP call. ReadRTP and WriteRTP may be
// called from different goroutines; each is meant for one goroutine at a
// time (concurrent calls of the same one are serialised).
type Endpoint struct {
	rtpConn, rtcpConn *net.UDPConn
	log               *slog.Logger
	latchOpt          bool
	interval          time.Duration
	cname             string
	localSSRC         uint32

	st     atomic.Pointer[state]
	closed atomic.Bool
	updMu  sync.Mutex // serialises Update and Close

	rxMu    sync.Mutex // ReadRTP or the push loop: rxBuf, pushBuf, rxHdr and the rx RTP contexts
	rxBuf   []byte
	pushBuf []byte // decrypted packets handed to a PushRTP's deliver
	rxHdr   rtp.Header
	push    atomic.Pointer[push] // the PushRTP in progress, nil when none

	txMu  sync.Mutex // WriteRTP: txBuf, txHdr and the tx RTP context
	txBuf []byte
	txHdr rtp.Header

	rtcpRxMu  sync.Mutex // every rx SRTCP context, rtcpRxBuf, rtcpIn
	rtcpRxBuf []byte
	rtcpIn    []byte

	rtcpTxMu  sync.Mutex // every tx SRTCP context, rtcpPlain, rtcpOut
	rtcpPlain []byte
	rtcpOut   []byte

	c counters

	sched      *Scheduler
	ownSched   bool
	poller     *Poller
	nextReport time.Time // owned by the scheduler goroutine after New
	wg         sync.WaitGroup
	// rtcpReading: the RTCP socket has its reader (under updMu).
	rtcpReading bool
}

// New makes the endpoint of a call from its sockets and first negotiation.
// rtcpConn may be nil (no RTCP without rtcp-mux); it is read only while a
// negotiation without rtcp-mux needs it. The endpoint does not
// close the sockets: their owner (sip.RTPPort) does, after Close.
func New(rtpConn, rtcpConn *net.UDPConn, neg sdp.Negotiated, opt Options) (*Endpoint, error) {
	if rtpConn == nil {
		return nil, errors.New("rtpendpoint: no RTP socket")
	}
	e := &Endpoint{
		rtpConn:   rtpConn,
		rtcpConn:  rtcpConn,
		log:       opt.Logger,
		poller:    opt.Poller,
		latchOpt:  opt.Latch,
		interval:  opt.RTCPInterval,
		cname:     opt.CNAME,
		localSSRC: rand.Uint32() | 1,
		rxBuf:     make([]byte, bufSize),
		txBuf:     make([]byte, bufSize+64),
		rtcpRxBuf: make([]byte, bufSize),
		rtcpIn:    make([]byte, bufSize),
		rtcpPlain: make([]byte, 0, 512),
		rtcpOut:   make([]byte, 0, 600),
	}
	e.c.epoch = time.Now()
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.interval == 0 {
		e.interval = DefaultRTCPInterval
	}
	if len(e.cname) > maxCNAME {
		e.cname = e.cname[:maxCNAME]
	}
	if e.cname == "" {
		var b [8]byte
		_, _ = cryptoRead(b[:])
		e.cname = "tgsip-" + hex.EncodeToString(b[:])
	}
	st, err := e.derive(neg, nil)
	if err != nil {
		return nil, err
	}
	// Clear the past deadline an earlier endpoint's Close left on the
	// sockets, should they be reused.
	_ = rtpConn.SetReadDeadline(time.Time{}) // an error here shows up in ReadRTP
	if rtcpConn != nil {
		_ = rtcpConn.SetReadDeadline(time.Time{})
	}
	e.st.Store(st)
	e.startRTCPReader(st)
	if e.interval > 0 {
		e.sched = opt.Scheduler
		if e.sched == nil {
			e.sched, e.ownSched = NewScheduler(0), true
		}
		// RFC 3550 §6.2: the first report after half the interval.
		e.nextReport = time.Now().Add(e.randomInterval() / 2)
		e.sched.add(e)
	}
	return e, nil
}

// startRTCPReader starts the RTCP socket's reader the first time a
// negotiation without rtcp-mux needs it; with rtcp-mux the endpoint has no
// goroutine of its own. Called from New and under updMu.
func (e *Endpoint) startRTCPReader(st *state) {
	if st.mux || e.rtcpConn == nil || e.rtcpReading {
		return
	}
	e.rtcpReading = true
	e.wg.Add(1)
	go e.readRTCPSocket()
}

// cryptoRead fills b from crypto/rand (which does not fail).
func cryptoRead(b []byte) (int, error) { return crand.Read(b) }

// derive builds the state for neg, reusing what old has where nothing
// changed: keys (and so their rollover counters) and a latched address.
func (e *Endpoint) derive(neg sdp.Negotiated, old *state) (*state, error) {
	var oldRx, oldTx *cryptoPair
	if old != nil {
		oldRx, oldTx = old.rx, old.tx
	}
	rx, err := keysFor(neg.SRTP, true, oldRx)
	if err != nil {
		return nil, err
	}
	tx, err := keysFor(neg.SRTP, false, oldTx)
	if err != nil {
		return nil, err
	}
	remote := unmap(neg.Remote)
	remoteRTCP := unmap(neg.RemoteRTCP)
	if neg.RTCPMux || !remoteRTCP.IsValid() {
		remoteRTCP = remote
		if !neg.RTCPMux && remote.IsValid() {
			// RFC 3550 §11: RTCP on the next port when SDP says nothing.
			remoteRTCP = netip.AddrPortFrom(remote.Addr(), remote.Port()+1)
		}
	}
	ns := &state{
		remote:     remote,
		remoteRTCP: remoteRTCP,
		dst:        remote,
		dstRTCP:    remoteRTCP,
		latch:      e.latchOpt,
		latchRTCP:  e.latchOpt && !neg.RTCPMux,
		mux:        neg.RTCPMux,
		sends:      neg.Direction.Sends(),
		clock:      neg.Codec.ClockRate,
		codecPT:    int(neg.Codec.PayloadType),
		dtmfPT:     -1,
		rx:         rx,
		tx:         tx,
	}
	if neg.DTMF != nil {
		ns.dtmfPT = int(neg.DTMF.PayloadType)
	}
	if ns.clock == 0 {
		ns.clock = 8000
	}
	if old == nil {
		return ns, nil
	}
	switch {
	case rx == old.rx:
		ns.prev, ns.hasPrev = old.prev, old.hasPrev
	case old.hasPrev:
		// Rekeyed again before any packet came under the last new keys:
		// the peer is still on the older ones, so they stay accepted.
		ns.prev, ns.hasPrev = old.prev, true
	default:
		ns.prev, ns.hasPrev = old.rx, true
	}
	if old.remote == remote && old.remoteRTCP == remoteRTCP && old.mux == ns.mux {
		// Same peer: keep the latch and any pending address change.
		ns.dst, ns.dstRTCP, ns.latch, ns.latchRTCP = old.dst, old.dstRTCP, old.latch, old.latchRTCP
		ns.prevSrc = old.prevSrc
	} else if !ns.latch {
		ns.prevSrc = old.dst
	}
	return ns, nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Update applies a new offer/answer outcome (re-INVITE, UPDATE, hold,
// resume): keys, addresses, direction, codec clock. Changed remote keys
// are accepted alongside the old ones until the first packet under the new
// ones, so no packet is lost; a direction that does not send makes WriteRTP
// drop (and count) what it is given.
func (e *Endpoint) Update(neg sdp.Negotiated) error {
	e.updMu.Lock()
	defer e.updMu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	for {
		old := e.st.Load()
		ns, err := e.derive(neg, old)
		if err != nil {
			return err
		}
		// The packet paths may have latched or finished a rekey since
		// Load; derive again from what they published.
		if e.st.CompareAndSwap(old, ns) {
			e.startRTCPReader(ns)
			e.log.Debug("rtp endpoint updated", "remote", ns.remote, "mux", ns.mux,
				"sends", ns.sends, "rekey_rx", ns.rx != old.rx, "rekey_tx", ns.tx != old.tx, "srtp", neg.SRTP != nil)
			return nil
		}
	}
}

// Close stops the endpoint: a blocked ReadRTP returns ErrClosed, the RTCP
// reader ends, a final RTCP BYE is sent (RFC 3550 §6.3.7) and the
// endpoint's scheduler entry goes. The sockets stay open for their owner.
// Close is safe to call more than once.
func (e *Endpoint) Close() error {
	e.updMu.Lock()
	if e.closed.Swap(true) {
		e.updMu.Unlock()
		return nil
	}
	e.updMu.Unlock()
	if e.sched != nil {
		e.sched.remove(e)
		if e.ownSched {
			e.sched.Close()
		}
		e.sendReport(time.Now(), true)
	}
	// A deadline in the past wakes readers blocked in the sockets without
	// closing them (internal/poll returns os.ErrDeadlineExceeded).
	past := time.Unix(1, 0)
	_ = e.rtpConn.SetReadDeadline(past) // a closed socket has woken its reader already
	if e.rtcpConn != nil {
		_ = e.rtcpConn.SetReadDeadline(past)
	}
	e.closePush()
	e.wg.Wait()
	return nil
}

// Stats returns the current counters.
func (e *Endpoint) Stats() Stats {
	st := e.st.Load()
	s := e.c.snapshot(st.clock)
	if st.tx != nil {
		s.SRTPProfile = st.tx.id.profile.String()
	}
	return s
}

// RemoteAddr is where RTP goes now: the negotiated or the latched address.
func (e *Endpoint) RemoteAddr() netip.AddrPort { return e.st.Load().dst }

// randomInterval is the report interval randomised to [0.5, 1.5] of the
// mean (RFC 3550 §6.3.1), so reports of many calls do not synchronise.
func (e *Endpoint) randomInterval() time.Duration {
	return e.interval/2 + rand.N(e.interval)
}

// tick is called by the scheduler when the next report is due.
func (e *Endpoint) tick(now time.Time) {
	e.nextReport = now.Add(e.randomInterval())
	e.sendReport(now, false)
}

// sendReport builds, protects and sends our compound RTCP packet.
func (e *Endpoint) sendReport(now time.Time, bye bool) {
	st := e.st.Load()
	conn, dst := e.rtcpConn, st.dstRTCP
	if st.mux || conn == nil {
		conn, dst = e.rtpConn, st.dst
	}
	if !dst.IsValid() || dst.Addr().IsUnspecified() || dst.Port() == 0 {
		return
	}
	e.rtcpTxMu.Lock()
	defer e.rtcpTxMu.Unlock()
	interval := e.interval
	if interval <= 0 { // no scheduled reports; the SR rule needs a span
		interval = DefaultRTCPInterval
	}
	plain := e.c.appendReport(e.rtcpPlain[:0], now, st.clock, interval, e.localSSRC, e.cname, bye)
	out := plain
	if st.tx != nil {
		var err error
		out, err = st.tx.rtcp.EncryptRTCP(e.rtcpOut[:0], plain, nil)
		if err != nil {
			e.c.rtcpErrors.Add(1)
			e.log.Debug("protect RTCP", "err", err)
			return
		}
	}
	if _, err := conn.WriteToUDPAddrPort(out, dst); err != nil {
		e.c.rtcpErrors.Add(1)
		return
	}
	e.c.rtcpOut.Add(1)
}
