package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/sip/sdp"
)

// allowMethods is what we answer in Allow.
const allowMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK"

// Server is one SIP user agent: listeners, trust, dialogs, calls.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	cli     *sipgo.Client
	ports   *PortPool
	gate    *gatekeeper
	dialogs *registry
	stats   TrustStats
	wire    WireStats
	// overloaded counts INVITEs refused with 503 by MaxCalls; shed those
	// refused because they waited too long to be handled (overload.go),
	// lastShed is when the last one was (Unix ns).
	overloaded atomic.Uint64
	shed       atomic.Uint64
	lastShed   atomic.Int64

	onCall    func(*InboundCall)
	newEngine func(port *RTPPort, policy sdp.SRTPPolicy, latch bool) mediaEngine
	// rtcp sends the RTCP reports of every call's endpoint from one
	// goroutine; Close stops it after the last call.
	rtcp *rtpendpoint.Scheduler
	// pollers, when set (UsePollers), read the RTP sockets of the calls
	// whose bridge takes packets by push, the calls spread over them in
	// turn (nextPoller); Close closes them after the last call.
	pollers    []*rtpendpoint.Poller
	nextPoller atomic.Uint32

	mu      sync.Mutex
	bound   map[Transport]netip.AddrPort
	closers []io.Closer
	started bool
	pbx     PBXStatus

	endedAcks sync.Map // dialogKey → *sip.Request
	panics    atomic.Int64

	// work counts goroutines that may still send (calls, BYEs, the PBX
	// loops); listeners counts the serve loops. Close waits for work
	// before it closes the transport, or a late request would open a
	// fresh socket behind the closed listener.
	work      tracker
	listeners sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once
	// sends, senders and dead keep sipgo from opening sockets at Close
	// (sweep.go).
	sends   sendGate
	senders *senders
	dead    *sip.UDPConnection
	// draining is set by Drain: no new calls, the current ones go on.
	draining atomic.Bool
	// halt closes closeGrace after closing (stopWaiting): from then on
	// nothing waits for a peer any more (see Close); haltCtx is done then.
	halt        <-chan struct{}
	haltCtx     context.Context
	stopWaiting context.CancelFunc

	// beforeRegister, when set (tests only), runs just before a new call
	// enters the registry; beforeAck just before an ACK of a call's is
	// written.
	beforeRegister     func()
	beforeAck          func()
	beforeResponsePost func(*sip.Response) // before a response to our INVITE is posted to its call
	beforeAckPost      func()              // before an ACK (its own transaction) is posted to its call
	beforeInvite       func()              // when a new INVITE's handler starts
}

// NewServer checks cfg and prepares a server; Start binds it.
func NewServer(cfg Config, log *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		log:     log.With("component", "sip"),
		dialogs: newRegistry(),
		bound:   map[Transport]netip.AddrPort{},
		closing: make(chan struct{}),
		senders: newSenders(),
		dead:    newDeadConn(),
	}
	s.haltCtx, s.stopWaiting = context.WithCancel(context.Background())
	s.halt = s.haltCtx.Done()
	s.work.idle.L = &s.work.mu
	s.gate = newGatekeeper(cfg, &s.stats)
	var err error
	if s.ports, err = NewPortPool(cfg.MediaAddr, cfg.RTPPorts); err != nil {
		return nil, err
	}
	s.newEngine = s.defaultEngine
	for _, t := range cfg.Trunks {
		if t.SymmetricRTP && cfg.srtpPolicy(t.SRTP) != sdp.SRTPRequired {
			s.log.Warn("symmetric_rtp without srtp: required latches onto the first RTP packet from anyone", "trunk", t.Name)
		}
	}
	if cfg.Outbound.SymmetricRTP && cfg.srtpPolicy(cfg.Outbound.SRTP) != sdp.SRTPRequired {
		s.log.Warn("symmetric_rtp without srtp: required latches onto the first RTP packet from anyone", "trunk", "outbound")
	}
	// sipgo logs whole unparsable messages; keep them out of our logs (they
	// may carry SDES keys) and keep its chatter at warning level.
	sipgoLog := slog.New(redactHandler{h: s.log.Handler()})
	clientTLS, err := cfg.Outbound.TLS.config()
	if err != nil {
		return nil, err
	}
	readFilter, transportLog := s.wireHooks(sipgoLog)
	s.ua, err = sipgo.NewUA(
		sipgo.WithUserAgenTLSConfig(clientTLS),
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentHostname(s.hostForURIs()),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(sipgoLog),
			sip.WithTransactionLayerUnhandledResponseHandler(s.onStrayResponse),
		),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(transportLog),
			sip.WithTransportLayerReadFilter(s.deafFilter(readFilter)),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sipgoLog)); err != nil {
		return nil, err
	}
	if s.cli, err = sipgo.NewClient(s.ua, sipgo.WithClientLogger(sipgoLog)); err != nil {
		return nil, err
	}
	s.srv.OnInvite(s.guard(s.onInvite))
	s.srv.OnAck(s.guard(s.onAck))
	s.srv.OnBye(s.guard(s.inDialog))
	s.srv.OnCancel(s.guard(s.onStrayCancel))
	s.srv.OnInfo(s.guard(s.inDialog))
	s.srv.OnUpdate(s.guard(s.inDialog))
	s.srv.OnPrack(s.guard(s.inDialog))
	s.srv.OnOptions(s.guard(s.onOptions))
	s.srv.OnNoRoute(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		s.reply(tx, req, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", allowMethods))
	}))
	// Made last: an error above leaves no goroutine behind.
	s.rtcp = rtpendpoint.NewScheduler(0)
	return s, nil
}

// OnCall installs the function that receives every accepted inbound call.
// It runs on its own goroutine, owned by the server; it must be set before
// Start.
func (s *Server) OnCall(f func(*InboundCall)) { s.onCall = f }

// Stats returns the trust counters.
func (s *Server) Stats() *TrustStats { return &s.stats }

// Overloaded is how many INVITEs were refused with 503 for load: by
// MaxCalls, or because they waited longer than OverloadDelay (Shed).
func (s *Server) Overloaded() uint64 { return s.overloaded.Load() + s.shed.Load() }

// Calls is the number of live dialogs (inbound and outbound).
func (s *Server) Calls() int { return s.dialogs.len() }

// Ports is the RTP port pool.
func (s *Server) Ports() *PortPool { return s.ports }

// Start binds every configured listener and serves until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("sip: server already started")
	}
	s.started = true
	for _, l := range s.cfg.Listen {
		tp := Transport(strings.ToUpper(string(l.Transport)))
		if err := s.listen(tp, l); err != nil {
			s.closeListenersLocked()
			return err
		}
	}
	s.startPBXWatch()
	return nil
}

func (s *Server) listen(tp Transport, l ListenConfig) error {
	addr := net.UDPAddrFromAddrPort(l.Addr)
	var serve func() error
	var bound netip.AddrPort
	switch tp {
	case UDP:
		c, err := net.ListenUDP("udp", addr)
		if err != nil {
			return fmt.Errorf("sip: listen udp %v: %w", l.Addr, err)
		}
		tuneUDPListener(c, s.log)
		s.closers = append(s.closers, c)
		bound = c.LocalAddr().(*net.UDPAddr).AddrPort()
		serve = func() error { return s.srv.ServeUDP(c) }
	case TCP, TLS:
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(l.Addr))
		if err != nil {
			return fmt.Errorf("sip: listen %s %v: %w", tp.network(), l.Addr, err)
		}
		bound = ln.Addr().(*net.TCPAddr).AddrPort()
		var listener net.Listener = ln
		if tp == TLS {
			cert, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
			if err != nil {
				ln.Close()
				return fmt.Errorf("sip: tls certificate: %w", err)
			}
			listener = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		}
		s.closers = append(s.closers, listener)
		if tp == TLS {
			serve = func() error { return s.srv.ServeTLS(listener) }
		} else {
			serve = func() error { return s.srv.ServeTCP(listener) }
		}
	default:
		return fmt.Errorf("sip: unknown transport %q", tp)
	}
	bound = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	s.bound[tp] = bound
	s.listeners.Add(1)
	go func() {
		defer s.listeners.Done()
		if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("listener stopped", "transport", tp, "err", err)
		}
	}()
	if tp == UDP {
		s.awaitUDPListener(bound)
	}
	s.log.Info("listening", "transport", tp, "addr", bound)
	return nil
}

// awaitUDPListener waits until sipgo has registered the UDP listener in
// its connection pool: until then an outbound request bound to our port
// would try to bind it a second time. sipgo offers no ready signal for a
// listener passed in, so poll briefly.
func (s *Server) awaitUDPListener(a netip.AddrPort) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := s.ua.TransportLayer().GetConnection("udp", a.String()); err == nil && c != nil {
			c.TryClose() // GetConnection took a reference
			return
		}
		time.Sleep(time.Millisecond)
	}
	s.log.Warn("UDP listener not ready", "addr", a)
}

// Addr is the bound address of the listener of a transport.
func (s *Server) Addr(tp Transport) (netip.AddrPort, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.bound[tp]
	return a, ok
}

func (s *Server) closeListenersLocked() {
	for _, c := range s.closers {
		c.Close()
	}
	s.closers = nil
}

// closeGrace is how long Close lets peers answer what ends the calls
// (BYE, CANCEL, the unREGISTER) before it stops waiting for them.
const closeGrace = time.Second

// Close ends every call (BYE or 503; a 2xx still waiting for its ACK gets
// its BYE at once, an unanswered INVITE its CANCEL), stops the listeners
// and waits for every goroutine the server started. Peers get closeGrace
// to answer; then every wait for a peer ends (transactions are dropped,
// retransmissions stop), so Close returns within about that, not the
// 64*T1 (32 s) of a transaction timeout.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		for _, o := range s.dialogs.all() {
			if c, ok := o.(interface{ shutdown() }); ok {
				c.shutdown()
			}
		}
		grace := time.AfterFunc(closeGrace, s.stopWaiting)
		s.work.closeWhenIdle()
		grace.Stop()
		s.stopWaiting()
		// No request of ours, and no message read from here on, may make
		// sipgo open a socket behind the closing listeners (sweep.go).
		s.sends.close()
		recent := s.senders.close()
		s.flushUDPReader()
		s.shelterSenders(recent)
		s.mu.Lock()
		s.closeListenersLocked()
		_, udpListener := s.bound[UDP]
		s.mu.Unlock()
		s.closeUA(udpListener)
		s.listeners.Wait()
		// Every call has ended (its finish closed its endpoint) once
		// work is idle: the reports are done.
		s.rtcp.Close()
		for _, p := range s.pollers {
			p.Close()
		}
	})
	return nil
}

// UsePollers makes the RTP endpoints of the calls push through the
// pollers (rtpendpoint.Options.Poller), each new call on the next one in
// turn, when their bridge takes packets by push (passthrough): a goroutine
// per Poller reads the sockets of all its calls instead of one goroutine
// per call. A Poller uses one CPU at most: give one per CPU. Call it
// before Start; the server owns the pollers from then on and closes them
// in Close, after the last call's endpoint.
func (s *Server) UsePollers(ps ...*rtpendpoint.Poller) { s.pollers = ps }

// poller is the Poller of a new call's endpoint, nil without pollers.
func (s *Server) poller() *rtpendpoint.Poller {
	if len(s.pollers) == 0 {
		return nil
	}
	return s.pollers[int(s.nextPoller.Add(1)-1)%len(s.pollers)]
}
