package media

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/stdnet"
)

// Transport is the process-wide network policy shared by all calls, built
// from the configuration once. A Transport is read-only after the first call
// starts; the same value is passed to every Config.
type Transport struct {
	// PortMin and PortMax bound the UDP ports of per-call sockets (host
	// candidates when UDPMux is nil, srflx gathering, reflector sockets).
	// Zero means any ephemeral port.
	PortMin, PortMax uint16
	// UDPMux, when set, carries the host candidates of every call on one
	// shared UDP port (see NewSharedPort). The remote side must then use
	// distinct addresses per call, which Telegram peers do; a call whose
	// remote is another call's, or the port itself, gets no host pair.
	UDPMux ice.UDPMux
	// PublicIPs are announced instead of the host addresses (NAT 1:1).
	PublicIPs []string
	// InterfaceFilter and IPFilter restrict which local interfaces and
	// addresses become host candidates (nil: all).
	InterfaceFilter func(string) bool
	IPFilter        func(net.IP) bool
	// IncludeLoopback gathers loopback host candidates (tests, demo).
	IncludeLoopback bool
	// IPv6 gathers IPv6 candidates and uses IPv6 reflectors too.
	IPv6 bool
	// ICEServers are extra STUN/TURN servers from the configuration, used by
	// every call in addition to those Telegram sends. Nothing is built in.
	ICEServers []ICEServer
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger
	// ReleaseUnusedRelays closes a call's reflector ports and TURN
	// allocations once a pair that uses none of them has stayed selected
	// for 10 s: about 110 KiB and 9 goroutines less per call with two
	// reflectors and a TURN server, but a call whose direct path breaks
	// can then not move to a relay. tgcalls keeps them for the whole call
	// (relays.go), and so does the default.
	ReleaseUnusedRelays bool

	// sched sends the RTCP of every connected session of this Transport
	// from one timer; a Transport must therefore not be copied.
	sched rtcpScheduler

	// ifs is the interface list every call's agent gathers host
	// candidates from (newSessionNet), read once per interfacesMaxAge
	// instead of once per call.
	ifsMu sync.Mutex
	ifs   *stdnet.Net
	ifsAt time.Time
}

// interfacesMaxAge is how long the Transport reuses its list of local
// interfaces and addresses for new calls. stdnet.NewNet reads it with
// net.Interfaces (a netlink dump, ~7 KiB of heap kept by every agent);
// an interface that comes up is seen by calls starting after this.
const interfacesMaxAge = time.Minute

// sessionNet returns a new call's transport.Net over the Transport's
// current interface list. A list is never changed after it is made (pion
// refreshes only a *stdnet.Net it is handed directly, and only when
// gathering continually), so agents share it without locking.
func (t *Transport) sessionNet() (*sessionNet, error) {
	t.ifsMu.Lock()
	defer t.ifsMu.Unlock()
	if t.ifs == nil || time.Since(t.ifsAt) > interfacesMaxAge {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		t.ifs, t.ifsAt = n, time.Now()
	}
	return &sessionNet{Net: t.ifs}, nil
}

// ICEServer is one STUN or TURN server: URL in RFC 7064/7065 form
// ("stun:host:port", "turn:host:port?transport=udp"), with credentials for
// TURN.
type ICEServer struct {
	URL                string
	Username, Password string
}

// NewSharedPort opens one UDP socket at addr (for example "0.0.0.0:4000") and
// returns an ICE mux that lets every call's agent use it for host candidates.
// The socket is read in batches by one goroutine that hands each datagram to
// its call (mux.go); a call reads its media from there directly.
// Datagrams are told apart by their remote address, so a host pair whose
// remote address belongs to another live call on the port (two concurrent
// calls between two such ports) or is the port itself (a call between two
// accounts on it) is not used: its checks are dropped and ICE selects a
// reflector or TURN pair instead (sharedMux).
// Close the returned Closer after the last call using it has closed. The
// mux logs to log (nil: slog.Default()).
func NewSharedPort(addr string, log *slog.Logger) (ice.UDPMux, io.Closer, error) {
	if log == nil {
		log = slog.Default()
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("media: shared port %q: %w", addr, err)
	}
	network := "udp" // no address or "[::]": dual stack
	if ua.IP.To4() != nil {
		network = "udp4" // "0.0.0.0:4000" means IPv4 only
	}
	conn, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, nil, fmt.Errorf("media: shared port %q: %w", addr, err)
	}
	// Room for bursts of every call's packets between two batched reads;
	// the kernel caps it at net.core.rmem_max.
	_ = conn.SetReadBuffer(4 << 20)
	mux := newSharedMux(conn, log.With("component", "shared_port"))
	return mux, mux, nil
}

// iceURIs converts configured servers into pion URIs. When turnOnly is set
// (P2P not allowed) STUN servers are skipped: tgcalls then gathers no
// server-reflexive candidates (PORTALLOCATOR_DISABLE_STUN).
func iceURIs(servers []ICEServer, turnOnly bool, log *slog.Logger) []*stun.URI {
	var out []*stun.URI
	for _, srv := range servers {
		u, err := stun.ParseURI(srv.URL)
		if err != nil {
			log.Warn("ignoring ICE server with a bad URL", "url", srv.URL, "err", err)
			continue
		}
		isTURN := u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS
		if turnOnly && !isTURN {
			continue
		}
		if isTURN {
			u.Username, u.Password = srv.Username, srv.Password
		}
		out = append(out, u)
	}
	return out
}

// agentOptions builds the pion agent options of one call, and returns the
// UDP TURN servers apart: the Session allocates on those itself (turn.go).
func agentOptions(t *Transport, cfg *Config, log *slog.Logger, lf pionLoggerFactory) ([]ice.AgentOption, []*stun.URI) {
	netTypes := []ice.NetworkType{ice.NetworkTypeUDP4}
	if t.IPv6 {
		netTypes = append(netTypes, ice.NetworkTypeUDP6)
	}
	servers := append(append([]ICEServer(nil), t.ICEServers...), cfg.ICEServers...)
	var urls, turnURLs []*stun.URI
	for _, u := range iceURIs(servers, !cfg.P2PAllowed, log) {
		if isUDPTURN(u) {
			turnURLs = append(turnURLs, u)
		} else {
			urls = append(urls, u)
		}
	}

	// Without P2P only relayed candidates exist (tgcalls
	// PORTALLOCATOR_DISABLE_UDP|DISABLE_STUN); reflectors are added as
	// virtual relay candidates regardless of this list.
	types := []ice.CandidateType{ice.CandidateTypeRelay}
	if cfg.P2PAllowed {
		types = []ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive, ice.CandidateTypeRelay}
	}

	disconnected := defaultDisconnectedTimeout
	if disconnected > cfg.ConnectTimeout/2 {
		disconnected = cfg.ConnectTimeout / 2
	}
	failed := cfg.ConnectTimeout - disconnected

	opts := []ice.AgentOption{
		ice.WithNetworkTypes(netTypes),
		ice.WithCandidateTypes(types),
		ice.WithUrls(urls),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithLoggerFactory(lf),
		ice.WithDisconnectedTimeout(disconnected),
		ice.WithFailedTimeout(failed),
	}
	if t.PortMin != 0 || t.PortMax != 0 {
		opts = append(opts, ice.WithPortRange(t.PortMin, t.PortMax))
	}
	if t.UDPMux != nil && cfg.P2PAllowed {
		opts = append(opts, ice.WithUDPMux(t.UDPMux))
	}
	if len(t.PublicIPs) > 0 {
		opts = append(opts, ice.WithAddressRewriteRules(ice.AddressRewriteRule{
			External:        t.PublicIPs,
			AsCandidateType: ice.CandidateTypeHost,
		}))
	}
	if t.InterfaceFilter != nil {
		opts = append(opts, ice.WithInterfaceFilter(t.InterfaceFilter))
	}
	if t.IPFilter != nil {
		opts = append(opts, ice.WithIPFilter(t.IPFilter))
	}
	if t.IncludeLoopback {
		opts = append(opts, ice.WithIncludeLoopback())
	}
	return opts, turnURLs
}

var errNoFreePort = errors.New("media: no free UDP port in the configured range")

// listenUDP opens a UDP socket of the family of remote, inside the
// configured port range when there is one.
func listenUDP(t *Transport, remote netip.AddrPort) (*net.UDPConn, error) {
	network, ip := "udp4", net.IPv4zero
	if remote.Addr().Is6() && !remote.Addr().Is4In6() {
		network, ip = "udp6", net.IPv6unspecified
	}
	if remote.Addr().IsLoopback() {
		// Stay on loopback for loopback servers (tests, demo).
		ip = net.IP(remote.Addr().Unmap().AsSlice())
	}
	if t.PortMin == 0 && t.PortMax == 0 {
		return net.ListenUDP(network, &net.UDPAddr{IP: ip})
	}
	lo, hi := int(t.PortMin), int(t.PortMax)
	if lo == 0 {
		lo = 1024
	}
	if hi == 0 {
		hi = 65535
	}
	if hi < lo {
		return nil, errNoFreePort
	}
	n := hi - lo + 1
	start := rand.IntN(n)
	for i := range n {
		port := lo + (start+i)%n
		c, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port})
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, errNoFreePort
}
