package media

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/packetio"
)

const (
	defaultConnectTimeout      = 20 * time.Second // tgcalls NativeNetworkingImpl maxTimeout
	defaultDisconnectedTimeout = 5 * time.Second
	defaultRTCPInterval        = time.Second
	// twccInterval is the transport-cc feedback interval. libwebrtc's
	// RemoteEstimatorProxy (modules/remote_bitrate_estimator/
	// remote_estimator_proxy.cc, OnBitrateChanged; Telegram's copy in
	// DrKLO/Telegram TMessagesProj/jni/voip/webrtc) sizes it so that feedback
	// (68 bytes on the wire) takes 5 % of the call's target send rate,
	// clamped to 50–250 ms; tgcalls' InstanceV2Impl::adjustBitratePreferences
	// pins that target to 32 kbit/s (min = start = max) while no video is
	// sent, which gives 340 ms, clamped to the 250 ms maximum.
	twccInterval   = 250 * time.Millisecond
	receiveMTU     = 8192 // pion/ice's receive buffer (the shared port's batch reader uses it too)
	dtlsQueueBytes = 256 << 10

	// maxDatagram is the largest datagram (SRTP, SRTCP, DTLS) the Session
	// handles itself; a larger one is dropped and counted (Stats.Dropped).
	// libwebrtc's DTLS transport accepts nothing larger either
	// (kMaxDtlsPacketLen = 2048, p2p/dtls/dtls_utils.h), and what tgcalls
	// sends stays well below it: SCTP packets are at most kSctpMtu = 1191
	// bytes (media/sctp/usrsctp_transport.cc) and an audio call's RTP a few
	// hundred. The Session's buffers were pion's 8 KiB receive MTU each.
	maxDatagram = 2048
	// datagramBuf is a receive buffer: one byte more than maxDatagram, so
	// that a datagram the kernel truncated to the buffer shows as too large,
	// and room for a reflector's header around maxDatagram bytes of data.
	datagramBuf = maxDatagram + reflectorOverhead + 1
	// maxWriteRTP is the largest plain RTP packet WriteRTP sends: with our
	// header extension block (12 bytes at most) and the SRTP tag (16 bytes
	// for AES-GCM, 10 for AES-CM/HMAC-SHA1-80) it stays within maxDatagram.
	maxWriteRTP = maxDatagram - 12 - 16
)

// Errors a Session ends with (Err). The engine maps them to a discard reason
// and SIP status in one place.
var (
	ErrClosed         = errors.New("media: session closed")
	ErrConnectTimeout = errors.New("media: not connected within the connect timeout")
	ErrDTLS           = errors.New("media: DTLS handshake failed")
	ErrICEFailed      = errors.New("media: ICE connection failed")
	ErrNotConnected   = errors.New("media: not connected yet")
)

// Config is the per-call part of the media transport.
type Config struct {
	// Transport is the process-wide network policy; required.
	Transport *Transport
	// Outgoing is true for the caller: ICE controlling, DTLS client unless
	// the remote setup attribute says otherwise.
	Outgoing bool
	// P2PAllowed false gathers and announces only relay candidates
	// (reflectors, TURN), as tgcalls does for p2p_allowed=false.
	P2PAllowed bool
	// Reflectors are the call's Telegram reflectors (phoneConnection).
	Reflectors []Reflector
	// ICEServers are STUN/TURN servers of the call (phoneConnectionWebrtc).
	ICEServers []ICEServer
	// ConnectTimeout bounds the time from Start to Connected, and how long
	// the connection may stay broken afterwards. Default 20 s.
	ConnectTimeout time.Duration
	// RTCPInterval is the receiver/sender report interval. Default 1 s.
	// Reports go out on the Transport's shared RTCP wheel, which turns
	// once per transport-cc interval (250 ms), so the interval is kept to
	// within half a turn.
	RTCPInterval time.Duration
	// Logger is the per-call logger; nil uses Transport.Logger.
	Logger *slog.Logger
}

// srtpKeys are the SRTP contexts of a connected session; in is used only by
// the reader, out only under txMu.
type srtpKeys struct {
	in, out *srtp.Context
	profile dtls.SRTPProtectionProfile
}

// Session is the media transport of one call. Its methods are safe for
// concurrent use; ReadRTP and WriteRTP are meant for one reader and one
// writer goroutine.
type Session struct {
	cfg   Config
	t     *Transport
	log   *slog.Logger
	agent *ice.Agent
	ports []*reflectorPort
	// UDP TURN servers and their allocations (turn.go); turns under mu.
	turnURLs []*stun.URI
	turns    []*turnPort
	// Release of unused relays (relays.go), under mu.
	releaseTimer   *time.Timer
	relaysReleased bool

	cert        tls.Certificate
	fingerprint string
	ufrag, pwd  string

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	onCand    func(string)
	started   bool
	remoteSet bool
	isClient  bool
	remote    RemoteParameters
	err       error
	dtlsConn  *dtls.Conn
	conn      *ice.Conn

	connectTimer *time.Timer // the connect timeout, from Start; under mu
	iceConnected chan struct{}
	iceOnce      sync.Once
	connected    chan struct{}
	ended        atomic.Bool // fail has run: the hot paths check it, not ctx
	done         chan struct{}
	wg           sync.WaitGroup // every goroutine of the session (teardown waits)

	dtlsEP *dtlsEndpoint
	keys   atomic.Pointer[srtpKeys]
	dc     dataChannel

	extAbsSendTime, extTransportCC atomic.Uint32

	// Direct path (direct.go): the agent's sockets, the selected route
	// (written by pion's selected-pair callback), what ReadRTP follows (cur,
	// under rxMu) and is reading (for kicks), and what the pump queues.
	net     *sessionNet
	route   atomic.Pointer[route]
	cur     *route
	reading atomic.Pointer[demux]
	side    sideQueue
	viaPump atomic.Uint64 // datagrams ReadRTP got from the pump (tests)

	// Push path (push.go): the current PushRTP (nil: ReadRTP reads),
	// PushRTP calls serialised, and the shared-port connection that
	// delivers inline (under rxMu).
	push   atomic.Pointer[pushState]
	pushMu sync.Mutex
	sink   pushSink

	// Receive path, owned by ReadRTP under rxMu.
	rxMu   sync.Mutex
	rxBuf  []byte
	rxHdr  rtp.Header
	rtcpIn []byte

	// Send path.
	txMu    sync.Mutex
	txHdr   rtp.Header
	txPlain []byte
	txOut   []byte
	rtcpOut []byte
	twccSeq uint16

	st rtcpState

	// RTCP timing, owned by the Transport's scheduler once registered.
	sched      *rtcpScheduler // set under mu once connected
	nextReport time.Time
}

// New prepares the transport of one call: ICE agent, certificate and the
// reflector sockets. Nothing is sent before Start.
func New(cfg Config) (*Session, error) {
	if cfg.Transport == nil {
		return nil, errors.New("media: Config.Transport is required")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.RTCPInterval <= 0 {
		cfg.RTCPInterval = defaultRTCPInterval
	}
	log := cfg.Logger
	if log == nil {
		log = cfg.Transport.Logger
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Session{
		cfg:          cfg,
		t:            cfg.Transport,
		log:          log,
		iceConnected: make(chan struct{}),
		connected:    make(chan struct{}),
		dc:           dataChannel{open: make(chan struct{})},
		done:         make(chan struct{}),
		rxBuf:        make([]byte, datagramBuf),
		rtcpIn:       make([]byte, maxDatagram),
		txPlain:      make([]byte, maxDatagram),
		txOut:        make([]byte, maxDatagram),
		rtcpOut:      make([]byte, maxDatagram),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.st.init()
	s.side.note = make(chan struct{}, 1)

	var err error
	if s.cert, s.fingerprint, err = newCertificate(); err != nil {
		return nil, fmt.Errorf("media: certificate: %w", err)
	}
	if s.net, err = s.t.sessionNet(); err != nil {
		return nil, fmt.Errorf("media: network: %w", err)
	}
	opts, turnURLs := agentOptions(s.t, &s.cfg, log, s.pionLogs())
	s.turnURLs = turnURLs
	opts = append(opts, ice.WithNet(s.net))
	if s.agent, err = ice.NewAgentWithOptions(opts...); err != nil {
		return nil, fmt.Errorf("media: ICE agent: %w", err)
	}
	if s.ufrag, s.pwd, err = s.agent.GetLocalUserCredentials(); err != nil {
		_ = s.agent.Close() // already failing; the first error is the one reported
		return nil, fmt.Errorf("media: ICE credentials: %w", err)
	}
	for _, r := range cfg.Reflectors {
		if r.TCP || r.ServerID == 0 || !r.Addr.IsValid() {
			log.Debug("skipping reflector", "server_id", r.ServerID, "addr", r.Addr, "tcp", r.TCP)
			continue
		}
		if r.Addr.Addr().Unmap().Is6() && !s.t.IPv6 {
			continue
		}
		conn, err := listenUDP(s.t, r.Addr)
		if err != nil {
			s.closeResources()
			return nil, fmt.Errorf("media: reflector %d socket: %w", r.ServerID, err)
		}
		s.ports = append(s.ports, newReflectorPort(r, conn))
	}
	if err := s.agent.OnCandidate(s.handleLocalCandidate); err != nil {
		s.closeResources()
		return nil, err
	}
	if err := s.agent.OnConnectionStateChange(s.handleICEState); err != nil {
		s.closeResources()
		return nil, err
	}
	if err := s.agent.OnSelectedCandidatePairChange(s.handleSelectedPair); err != nil {
		s.closeResources()
		return nil, err
	}
	// The teardown runs once the session ends, on a goroutine of its own
	// started then, not on one that waits for the call's whole life.
	context.AfterFunc(s.ctx, s.teardown)
	return s, nil
}

// LocalParameters returns our ICE credentials and DTLS fingerprint for
// InitialSetup.
func (s *Session) LocalParameters() Parameters {
	s.mu.Lock()
	defer s.mu.Unlock()
	setup := "passive"
	switch {
	case s.remoteSet && s.isClient:
		setup = "active"
	case s.remoteSet:
		setup = "passive"
	case s.cfg.Outgoing:
		setup = "actpass"
	}
	return Parameters{Ufrag: s.ufrag, Pwd: s.pwd, Fingerprint: s.fingerprint, Setup: setup, Renomination: true}
}

// OnCandidate sets the function that receives our candidates as candidate
// attribute strings, in the order they are gathered. Set it before Start.
// It is called from transport goroutines and must not block for long.
func (s *Session) OnCandidate(f func(sdp string)) {
	s.mu.Lock()
	s.onCand = f
	s.mu.Unlock()
}

// Start begins gathering: host and server-reflexive candidates when P2P is
// allowed, TURN allocations, and reflector hellos. The connect timeout runs
// from here.
func (s *Session) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	if s.ctx.Err() != nil {
		return s.errLocked()
	}
	if err := s.agent.GatherCandidates(); err != nil {
		return fmt.Errorf("media: gather: %w", err)
	}
	s.started = true
	s.connectTimer = time.AfterFunc(s.cfg.ConnectTimeout, s.connectTimedOut)
	for _, p := range s.ports {
		s.wg.Add(1)
		go s.runReflector(p)
	}
	s.startTURN()
	return nil
}

// SetRemote applies the peer's InitialSetup: it fixes the DTLS role, starts
// ICE connectivity checks and, once ICE connects, the DTLS handshake with the
// peer certificate checked against its fingerprints.
func (s *Session) SetRemote(p RemoteParameters) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return s.errLocked()
	}
	if s.remoteSet {
		return errors.New("media: remote parameters already set (ICE restart is not supported)")
	}
	if p.Ufrag == "" || p.Pwd == "" || len(p.Fingerprints) == 0 {
		return errors.New("media: remote parameters need ufrag, pwd and a fingerprint")
	}
	s.remote = p
	s.remote.Fingerprints = append([]Fingerprint(nil), p.Fingerprints...)
	s.isClient = dtlsClientRole(s.cfg.Outgoing, p.Fingerprints)
	var err error
	if s.cfg.Outgoing {
		s.conn, err = s.agent.StartDial(p.Ufrag, p.Pwd)
	} else {
		s.conn, err = s.agent.StartAccept(p.Ufrag, p.Pwd)
	}
	if err != nil {
		return fmt.Errorf("media: start ICE: %w", err)
	}
	s.remoteSet = true
	s.wg.Add(1)
	go s.run(s.conn, s.isClient, s.remote.Fingerprints)
	return nil
}

// Connected is closed when ICE is connected and the DTLS-SRTP keys exist.
func (s *Session) Connected() <-chan struct{} { return s.connected }

// Done is closed when the session has ended (failure or Close) and all its
// resources are released.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended: ErrConnectTimeout, an error wrapping
// ErrDTLS, ErrICEFailed, or ErrClosed after Close; nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Session) errLocked() error {
	if s.err != nil {
		return s.err
	}
	return ErrClosed
}

// fail records the first terminal error and starts teardown. It never blocks,
// so pion callbacks may call it.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		if !errors.Is(err, ErrClosed) {
			s.log.Warn("media transport failed", "err", err)
		}
	}
	s.mu.Unlock()
	s.ended.Store(true)
	s.cancel()
}

// pionLogs is the logger factory of the session's pion parts (pionlog.go).
func (s *Session) pionLogs() pionLoggerFactory {
	return pionLoggerFactory{log: s.log, ended: &s.ended}
}

// Close ends the session, closes every socket and waits for every goroutine
// the session started. It is idempotent and safe concurrently with ReadRTP
// and WriteRTP, which then return an error.
func (s *Session) Close() error {
	s.fail(ErrClosed)
	<-s.done
	return nil
}

// connectTimedOut ends a session that did not connect within
// ConnectTimeout of Start.
func (s *Session) connectTimedOut() {
	select {
	case <-s.connected:
	default:
		s.fail(ErrConnectTimeout)
	}
}

// teardown releases everything once the session has ended (context.AfterFunc
// of its context) and then closes done.
func (s *Session) teardown() {
	defer close(s.done)
	s.mu.Lock()
	if s.connectTimer != nil {
		s.connectTimer.Stop()
	}
	sched := s.sched
	s.mu.Unlock()
	if sched != nil {
		sched.remove(s)
	}
	s.closeResources()
	s.wg.Wait()
}

// closeResources closes DTLS, the agent (which closes its candidates'
// sockets, including registered reflector ports) and the reflector sockets.
func (s *Session) closeResources() {
	s.stopReleaseTimer()
	s.mu.Lock()
	dc := s.dtlsConn
	s.mu.Unlock()
	s.closeDataChannel()
	if dc != nil {
		_ = dc.Close() // best effort close_notify; the transport is going away
	}
	s.mu.Lock()
	ep := s.dtlsEP
	s.mu.Unlock()
	if ep != nil {
		_ = ep.Close() // only wakes a blocked DTLS read
	}
	if err := s.agent.Close(); err != nil && !errors.Is(err, ice.ErrClosed) {
		s.log.Debug("closing ICE agent", "err", err)
	}
	for _, p := range s.ports {
		_ = p.Close() // idempotent; the agent may have closed it already
	}
	s.closeTURN()
}

func (s *Session) handleICEState(st ice.ConnectionState) {
	s.log.Debug("ICE state", "state", st.String())
	switch st {
	case ice.ConnectionStateConnected:
		s.iceOnce.Do(func() { close(s.iceConnected) })
	case ice.ConnectionStateFailed:
		// Before the first connection tgcalls waits for its connect timeout
		// (candidates may still trickle in); afterwards Failed means the
		// path has been silent for the whole timeout.
		select {
		case <-s.iceConnected:
			s.fail(ErrICEFailed)
		default:
		}
	}
}

// run waits for ICE, runs the DTLS handshake, derives the SRTP keys and then
// registers the session with the Transport's RTCP scheduler.
func (s *Session) run(conn *ice.Conn, isClient bool, fps []Fingerprint) {
	defer s.wg.Done()
	select {
	case <-s.iceConnected:
	case <-s.ctx.Done():
		return
	}
	ep := newDTLSEndpoint(conn)
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.dtlsEP = ep
	s.mu.Unlock()

	s.wg.Add(1)
	go s.pump(conn)

	shared := []dtls.Option{
		dtls.WithCertificates(s.cert),
		// tgcalls enables the GCM suites next to AES128_CM_SHA1_80.
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		// Self-signed certificates: trust comes from the fingerprint that
		// arrived over the encrypted signaling channel.
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyFingerprint(raw, fps)
		}),
		dtls.WithLoggerFactory(s.pionLogs()),
	}
	var dc *dtls.Conn
	var err error
	if isClient {
		opts := make([]dtls.ClientOption, 0, len(shared))
		for _, o := range shared {
			opts = append(opts, o)
		}
		dc, err = dtls.ClientWithOptions(ep, ep.RemoteAddr(), opts...)
	} else {
		opts := make([]dtls.ServerOption, 0, len(shared)+1)
		for _, o := range shared {
			opts = append(opts, o)
		}
		opts = append(opts, dtls.WithClientAuth(dtls.RequireAnyClientCert))
		dc, err = dtls.ServerWithOptions(ep, ep.RemoteAddr(), opts...)
	}
	if err != nil {
		s.fail(fmt.Errorf("%w: %w", ErrDTLS, err))
		return
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		_ = dc.Close() // teardown already ran without seeing it
		return
	}
	s.dtlsConn = dc
	s.mu.Unlock()

	if err := dc.HandshakeContext(s.ctx); err != nil {
		if s.ctx.Err() == nil {
			s.fail(fmt.Errorf("%w: %w", ErrDTLS, err))
		}
		return
	}
	keys, err := srtpFromDTLS(dc, isClient)
	if err != nil {
		s.fail(fmt.Errorf("%w: %w", ErrDTLS, err))
		return
	}
	s.keys.Store(keys)
	// RTCP from here on comes from the Transport's shared scheduler;
	// registered before Connected so that a connected session is scheduled.
	s.mu.Lock()
	if s.ctx.Err() == nil {
		s.nextReport = time.Now().Add(s.cfg.RTCPInterval)
		s.sched = &s.t.sched
		s.sched.add(s)
	}
	s.mu.Unlock()
	close(s.connected)
	s.log.Debug("media connected", "srtp_profile", profileName(keys.profile), "dtls_client", isClient)
	s.wg.Add(1)
	go s.runDataChannel(dc)
}

// srtpFromDTLS exports the SRTP master keys (RFC 5764 §4.2) and builds the
// two directional contexts.
func srtpFromDTLS(dc *dtls.Conn, isClient bool) (*srtpKeys, error) {
	dp, ok := dc.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, errors.New("no SRTP profile negotiated")
	}
	var profile srtp.ProtectionProfile
	switch dp {
	case dtls.SRTP_AEAD_AES_128_GCM:
		profile = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		return nil, fmt.Errorf("unexpected SRTP profile %v", dp)
	}
	state, ok := dc.ConnectionState()
	if !ok {
		return nil, errors.New("no DTLS connection state")
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		return nil, err
	}
	out, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, profile)
	if err != nil {
		return nil, err
	}
	in, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, profile,
		srtp.SRTPReplayProtection(256), srtp.SRTCPReplayProtection(256))
	if err != nil {
		return nil, err
	}
	return &srtpKeys{in: in, out: out, profile: dp}, nil
}

// dtlsEndpoint is the net.PacketConn the DTLS stack sees: reads come from
// the demultiplexer through a bounded buffer, writes go straight to ICE.
type dtlsEndpoint struct {
	conn *ice.Conn
	buf  *packetio.Buffer
}

func newDTLSEndpoint(conn *ice.Conn) *dtlsEndpoint {
	b := packetio.NewBuffer()
	b.SetLimitSize(dtlsQueueBytes)
	return &dtlsEndpoint{conn: conn, buf: b}
}

var dtlsPeerAddr = &net.UDPAddr{IP: net.IPv4zero, Port: 9} // DTLS needs an address; ICE knows the real one

func (e *dtlsEndpoint) RemoteAddr() net.Addr { return dtlsPeerAddr }

// deliver queues one DTLS record from the demultiplexer.
func (e *dtlsEndpoint) deliver(b []byte) { _, _ = e.buf.Write(b, nil) } // full or closed: drop, DTLS retransmits

func (e *dtlsEndpoint) ReadFrom(b []byte) (int, net.Addr, error) {
	n, _, err := e.buf.Read(b, nil)
	return n, dtlsPeerAddr, err
}

func (e *dtlsEndpoint) WriteTo(b []byte, _ net.Addr) (int, error) { return e.conn.Write(b) }
func (e *dtlsEndpoint) Close() error                              { return e.buf.Close() }
func (e *dtlsEndpoint) LocalAddr() net.Addr                       { return dtlsPeerAddr }
func (e *dtlsEndpoint) SetDeadline(t time.Time) error             { return e.buf.SetReadDeadline(t) }
func (e *dtlsEndpoint) SetReadDeadline(t time.Time) error         { return e.buf.SetReadDeadline(t) }
func (e *dtlsEndpoint) SetWriteDeadline(time.Time) error          { return nil }

// profileName names a DTLS-SRTP profile for logs and stats.
func profileName(p dtls.SRTPProtectionProfile) string {
	switch p {
	case dtls.SRTP_AEAD_AES_128_GCM:
		return "SRTP_AEAD_AES_128_GCM"
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		return "SRTP_AES128_CM_HMAC_SHA1_80"
	}
	return fmt.Sprintf("0x%04x", uint16(p))
}
