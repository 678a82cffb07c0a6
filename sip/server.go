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
	"runtime/debug"
	"strconv"
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
	// overloaded counts INVITEs refused with 503 by MaxCalls.
	overloaded atomic.Uint64

	onCall    func(*InboundCall)
	newEngine func(port *RTPPort, policy sdp.SRTPPolicy, latch bool) mediaEngine
	// rtcp sends the RTCP reports of every call's endpoint from one
	// goroutine; Close stops it after the last call.
	rtcp *rtpendpoint.Scheduler

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

// guard keeps a bug triggered by one hostile message from taking the
// process (and every other call) down: the panic is logged, counted and
// answered 500.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.panics.Add(1)
				s.log.Error("panic in SIP handler", "method", req.Method, "panic", p, "stack", string(debug.Stack()))
				if !req.IsAck() {
					s.reply(tx, req, 500, "Server Internal Error", nil)
				}
			}
		}()
		if req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.Via() == nil {
			// RFC 3261 §8.1.1: mandatory headers; sipgo lets some through.
			if !req.IsAck() {
				s.reply(tx, req, 400, "Bad Request", nil)
			}
			return
		}
		if !s.admit(req, tx) {
			return
		}
		h(req, tx)
	}
}

// OnCall installs the function that receives every accepted inbound call.
// It runs on its own goroutine, owned by the server; it must be set before
// Start.
func (s *Server) OnCall(f func(*InboundCall)) { s.onCall = f }

// Stats returns the trust counters.
func (s *Server) Stats() *TrustStats { return &s.stats }

// Overloaded is how many INVITEs MaxCalls refused with 503.
func (s *Server) Overloaded() uint64 { return s.overloaded.Load() }

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
	})
	return nil
}

// untilHalt is ctx, also cancelled when Close stops waiting for peers:
// a dial or TLS handshake to a PBX that never completes it must not hold
// Close up.
func (s *Server) untilHalt(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.haltCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// errHalted ends a transaction that Close stopped waiting for.
var errHalted = errors.New("sip: server closed before the peer answered")

// goTracked runs f on a goroutine the server waits for at Close. Once
// Close has seen all such goroutines finish, f is dropped.
func (s *Server) goTracked(f func()) {
	if !s.work.start() {
		s.log.Debug("work dropped: server closed")
		return
	}
	go func() {
		defer s.work.finish()
		f()
	}()
}

// tracker counts running goroutines. Unlike a WaitGroup it may gain new
// goroutines while Close waits (a BYE started by an ACK timeout during
// shutdown), and refuses them once it has been idle and closed.
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   sync.Cond
}

func (t *tracker) start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		t.idle.Broadcast()
	}
}

// closeWhenIdle waits until nothing runs, then refuses new work.
func (t *tracker) closeWhenIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.n > 0 {
		t.idle.Wait()
	}
	t.closed = true
}

// hostForURIs is the host we advertise in Contact and Via.
func (s *Server) hostForURIs() string {
	if s.cfg.ExternalSignalingAddr.IsValid() {
		return s.cfg.ExternalSignalingAddr.String()
	}
	for _, l := range s.cfg.Listen {
		if a := l.Addr.Addr(); a.IsValid() && !a.IsUnspecified() {
			return a.String()
		}
	}
	if s.cfg.Domain != "" {
		return s.cfg.Domain
	}
	return "127.0.0.1"
}

// contact is our Contact for a dialog on transport tp. Without a listener
// of tp its port is 0 until reuseConnection (or contactFor) sets it.
func (s *Server) contact(tp string, user string) *sip.ContactHeader {
	t := Transport(strings.ToUpper(tp))
	a, _ := s.Addr(t)
	u := sip.Uri{Scheme: "sip", User: user, Host: s.hostForURIs(), Port: int(a.Port())}
	if t != UDP {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t.network())
	}
	if user == "" {
		u.User = "tgsip"
	}
	return &sip.ContactHeader{Address: u}
}

// prepareRequest adds our Via (advertised host, the listener's port for
// the request's transport, rport per RFC 3581) and, on UDP, makes the
// request leave from the listener socket.
func (s *Server) prepareRequest(req *sip.Request) {
	tp := Transport(strings.ToUpper(req.Transport()))
	a, ok := s.Addr(tp)
	via := &sip.ViaHeader{
		ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: string(tp),
		Host: s.hostForURIs(), Port: int(a.Port()), Params: sip.NewParams(),
	}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.RemoveHeader("Via")
	req.PrependHeader(via)
	if tp == UDP && ok && req.Laddr.IP == nil {
		req.Laddr = sip.Addr{IP: net.IP(a.Addr().AsSlice()), Port: int(a.Port())}
	}
	if req.GetHeader("User-Agent") == nil {
		req.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))
	}
	if req.ContentLength() == nil {
		req.SetBody(req.Body())
	}
}

// request sends req in a client transaction.
func (s *Server) request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	// sipgo uses ctx only to get the connection (dial, TLS handshake).
	ctx, cancel := s.untilHalt(ctx)
	defer cancel()
	s.prepareRequest(req)
	if !s.sends.enter() {
		return nil, errServerClosed
	}
	defer s.sends.leave()
	if err := s.reuseConnection(ctx, req); err != nil {
		return nil, err
	}
	return s.cli.TransactionRequest(ctx, req, noBuild)
}

// do sends req and waits for its final response.
func (s *Server) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := s.request(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, tx.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.halt:
			return nil, errHalted
		}
	}
}

// writeStateless sends a request outside any transaction (ACK for 2xx).
func (s *Server) writeStateless(req *sip.Request) error {
	s.prepareRequest(req)
	ctx, cancel := context.WithTimeout(context.Background(), 64*s.cfg.T1)
	defer cancel()
	if !s.sends.enter() {
		return errServerClosed
	}
	defer s.sends.leave()
	if err := s.reuseConnection(ctx, req); err != nil {
		return err
	}
	return s.cli.WriteRequest(req, noBuild)
}

// reply answers req in tx, adding our Server header.
func (s *Server) reply(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, fitReason(code, reason), body)
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.sendFailed(code, req, err)
	}
}

// sourceAddr parses where a request came from.
func sourceAddr(req *sip.Request) netip.AddrPort {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// onOptions answers OPTIONS in and out of dialogs: a load balancer's probe
// only marks us up on 200 (Kamailio dispatcher), and gets 503 while we
// take no calls (refuseProbe).
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if s.refuseProbe(req, tx) {
		return
	}
	s.reply(tx, req, 200, "OK", nil,
		sip.NewHeader("Allow", allowMethods),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"),
		sip.NewHeader("Supported", "100rel, timer, replaces"),
	)
}

// inDialog routes a request with a To tag to the dialog it belongs to.
func (s *Server) inDialog(req *sip.Request, tx sip.ServerTransaction) {
	k, ok := keyForIncoming(req)
	var o dialogOwner
	if ok {
		o = s.dialogs.get(k)
	}
	if o == nil {
		// RFC 3261 §12.2.2: a request for a dialog we do not know.
		s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	o.handleInDialog(req, tx)
}

// onAck delivers ACKs for 2xx (new transactions) to their dialog; an ACK
// for an unknown dialog is dropped silently (RFC 3261 §17.2.3 has no
// response for ACK).
func (s *Server) onAck(req *sip.Request, _ sip.ServerTransaction) {
	k, ok := keyForIncoming(req)
	if !ok {
		return
	}
	if o := s.dialogs.get(k); o != nil {
		o.handleAck(req)
	}
}

// onStrayCancel handles a CANCEL that matched no INVITE transaction.
func (s *Server) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
}

// onStrayResponse sees responses no client transaction claims: 2xx
// retransmissions to our INVITEs after the transaction ended. RFC 3261
// §13.2.2.4 makes the UAC core ACK each of them (sipgo#120).
func (s *Server) onStrayResponse(res *sip.Response) {
	cseq := res.CSeq()
	if cseq == nil || cseq.MethodName != sip.INVITE || !res.IsSuccess() {
		return
	}
	cid := res.CallID()
	if cid == nil {
		return
	}
	k := dialogKey{callID: cid.Value(), localTag: LocalTag(fromTag(res))}
	if oc, ok := s.dialogs.get(k).(*OutboundCall); ok {
		oc.handleRetransmitted2xx(res)
		return
	}
	if v, ok := s.endedAcks.Load(k); ok {
		_ = s.writeStateless(v.(*sip.Request).Clone()) // best effort, like the first ACK
	}
}

// rememberAck keeps the ACK of an ended outbound dialog for 64*T1 so late
// 2xx copies are still acknowledged.
func (s *Server) rememberAck(k dialogKey, ack *sip.Request) {
	s.endedAcks.Store(k, ack)
	time.AfterFunc(64*s.cfg.T1, func() { s.endedAcks.Delete(k) })
}

// redactHandler drops message dumps from sipgo's log records and lowers
// its info chatter to debug.
type redactHandler struct{ h slog.Handler }

func (r redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return r.h.Enabled(ctx, l)
}

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	level := rec.Level
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	if !r.h.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(rec.Time, level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data", "msg", "req", "res", "request", "response":
			out.AddAttrs(slog.String(a.Key, "[redacted]"))
		default:
			out.AddAttrs(a)
		}
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return redactHandler{h: r.h.WithAttrs(as)}
}

func (r redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h: r.h.WithGroup(name)}
}

// itoa is strconv.Itoa for header building.
func itoa(n int) string { return strconv.Itoa(n) }

// timerBackoff yields T1, 2T1, 4T1 … capped at T2 (RFC 3261 §13.3.1.4).
func timerBackoff(t1 time.Duration, i int) time.Duration {
	d := t1 << i
	if d > defaultT2 || d <= 0 {
		return defaultT2
	}
	return d
}

// noBuild is a client request option that leaves the request as we built
// it (sipgo's default would add headers we already set).
func noBuild(*sipgo.Client, *sip.Request) error { return nil }
