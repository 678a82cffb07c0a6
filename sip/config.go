package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tgsip/tgsip/sip/sdp"
)

// Transport names a SIP transport as it appears in a Via header.
type Transport string

// The transports the server listens on.
const (
	UDP Transport = "UDP"
	TCP Transport = "TCP"
	TLS Transport = "TLS"
)

// network returns the lower-case network name sipgo uses for the transport.
func (t Transport) network() string { return strings.ToLower(string(t)) }

// ListenConfig is one SIP listener.
type ListenConfig struct {
	// Transport is udp, tcp or tls.
	Transport Transport `yaml:"transport"`
	// Addr is the local address and port to bind (port 0 picks a free one).
	Addr netip.AddrPort `yaml:"addr"`
	// CertFile and KeyFile are the PEM certificate chain and key for tls.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// PortRange is an inclusive range of UDP ports for RTP.
type PortRange struct {
	Min uint16 `yaml:"min"`
	Max uint16 `yaml:"max"`
}

// DigestAlgorithm is a digest algorithm of RFC 8760.
type DigestAlgorithm string

// The digest algorithms the trunk accepts.
const (
	MD5    DigestAlgorithm = "MD5"
	SHA256 DigestAlgorithm = "SHA-256"
)

// TrunkConfig says which peers may place calls through the trunk.
type TrunkConfig struct {
	// Name labels the trunk in logs and on the call.
	Name string `yaml:"name"`
	// Allow lists the source networks accepted. Empty means any source
	// (then Username must be set, or every caller on the network is trusted).
	Allow []netip.Prefix `yaml:"allow"`
	// Username and Password, when set, require digest authentication.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Realm is the digest realm; default the server's Domain.
	Realm string `yaml:"realm"`
	// Algorithms offered in challenges, preferred first; default SHA-256, MD5.
	Algorithms []DigestAlgorithm `yaml:"algorithms"`
	// ProxyAuth challenges with 407/Proxy-Authenticate instead of 401.
	ProxyAuth bool `yaml:"proxy_auth"`
	// SRTP overrides media.srtp for calls from this trunk: off, optional
	// or required. Unset means the global policy.
	SRTP *sdp.SRTPPolicy `yaml:"srtp"`
	// SymmetricRTP latches the media of calls from this trunk (symmetric
	// RTP, "comedia"): RTP and RTCP go to, and are accepted only from, the
	// source of the first authenticated packet instead of the address in
	// the SDP, for phones and PBXs behind NAT. With plain RTP the first
	// packet of a negotiated payload type wins, so pair it with srtp:
	// required (docs/sip-leg.md, "Media").
	SymmetricRTP bool `yaml:"symmetric_rtp"`
}

// AuthLimitConfig throttles sources that keep failing authentication.
type AuthLimitConfig struct {
	// Failures allowed per source (IPv4 address, IPv6 /64) within Window
	// before it is refused with 403 without a challenge: for Window the
	// first time, twice as long each further time, up to an hour
	// (docs/sip-leg.md, "Failed authentication").
	Failures int           `yaml:"failures"`
	Window   time.Duration `yaml:"window"`
	// NonceTTL is how long a challenge nonce stays valid.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
}

// SessionTimerConfig is RFC 4028 behaviour.
type SessionTimerConfig struct {
	// Expires is the Session-Expires we ask for as UAC and grant at most as
	// UAS; zero disables timers we would start ourselves.
	Expires time.Duration `yaml:"expires"`
	// MinSE is the smallest interval we accept (RFC 4028 floor is 90 s).
	MinSE time.Duration `yaml:"min_se"`
}

// OutboundConfig is where calls from Telegram are sent.
type OutboundConfig struct {
	// URI of the PBX, e.g. sip:pbx.example.net:5060;transport=tcp.
	URI string `yaml:"uri"`
	// Username and Password answer 401/407 challenges from the PBX.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// FromUser and FromDomain override the From header of our INVITEs.
	FromUser   string `yaml:"from_user"`
	FromDomain string `yaml:"from_domain"`
	// RingTimeout bounds the wait for an answer; default 60 s.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// Register keeps a registration of Username at the PBX (the trunk
	// account), refreshed at 3/4 of the granted expiry.
	Register bool `yaml:"register"`
	// RegisterExpires is the expiry we ask for; default 3600 s.
	RegisterExpires time.Duration `yaml:"register_expires"`
	// OptionsPing, when set, sends OPTIONS to the PBX at this interval and
	// marks it up or down.
	OptionsPing time.Duration `yaml:"options_ping"`
	// SRTP overrides media.srtp for calls to the PBX: off, optional or
	// required. Unset means the global policy.
	SRTP *sdp.SRTPPolicy `yaml:"srtp"`
	// SymmetricRTP latches the media of calls to the PBX, as
	// TrunkConfig.SymmetricRTP does for calls from a trunk.
	SymmetricRTP bool `yaml:"symmetric_rtp"`
	// TLS says how the PBX's certificate is verified when URI uses
	// transport=tls or sips:.
	TLS OutboundTLS `yaml:"tls"`
}

// OutboundTLS configures the verification of the PBX's TLS certificate.
// The certificate is always verified; PBXs with self-signed certificates
// are trusted by listing that certificate (or their CA) in CAFile.
type OutboundTLS struct {
	// CAFile is a PEM bundle of certificates trusted besides the system
	// roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the certificate must carry; empty means the
	// host of each connection (the URI's host or IP).
	ServerName string `yaml:"server_name"`
}

// Config is the SIP leg's configuration.
type Config struct {
	// Listen are the signalling listeners.
	Listen []ListenConfig `yaml:"listen"`
	// Domain is our SIP domain (used in From of outbound calls and as realm).
	Domain string `yaml:"domain"`
	// UserAgent is sent in User-Agent and Server headers.
	UserAgent string `yaml:"user_agent"`
	// ExternalSignalingAddr is advertised in Via/Contact instead of the bound
	// address when the trunk sits behind 1:1 NAT.
	ExternalSignalingAddr netip.Addr `yaml:"external_signaling_addr"`
	// ExternalMediaAddr is advertised in SDP instead of MediaAddr.
	ExternalMediaAddr netip.Addr `yaml:"external_media_addr"`
	// MediaAddr is the address RTP sockets bind to.
	MediaAddr netip.Addr `yaml:"media_addr"`
	// Media is the SDP policy (codecs, DTMF, ptime, SRTP).
	Media sdp.Config `yaml:"media"`
	// RTPPorts is the UDP port range for RTP/RTCP pairs.
	RTPPorts PortRange `yaml:"rtp_ports"`
	// Trunks are the peers allowed to call in.
	Trunks []TrunkConfig `yaml:"trunks"`
	// AuthLimit throttles failed authentication.
	AuthLimit AuthLimitConfig `yaml:"auth_limit"`
	// SessionTimers is RFC 4028 behaviour.
	SessionTimers SessionTimerConfig `yaml:"session_timers"`
	// Outbound is the PBX that receives calls from Telegram.
	Outbound OutboundConfig `yaml:"outbound"`
	// MaxCalls caps the calls (both directions) the server carries at once;
	// an INVITE beyond it gets 503 with Retry-After, the status a SIP load
	// balancer fails over on. 0 means no cap (the b2bua still answers 503
	// when no Telegram account is free).
	MaxCalls int `yaml:"max_calls"`
	// OverloadDelay: a new INVITE over UDP that waited longer than this
	// between its read from the socket and its handler is refused with
	// 503 and Retry-After (sip/overload.go); default 2·T1 (1 s). Negative:
	// never.
	OverloadDelay time.Duration `yaml:"overload_delay"`
	// T1 is the SIP round-trip estimate; default 500 ms (tests shorten it).
	T1 time.Duration `yaml:"t1"`
}

// Defaults used when a field is left zero.
const (
	defaultUserAgent   = "tgsip"
	defaultT1          = 500 * time.Millisecond
	defaultT2          = 4 * time.Second
	defaultNonceTTL    = 5 * time.Minute
	defaultAuthFails   = 5
	defaultAuthWindow  = time.Minute
	defaultMinSE       = 90 * time.Second
	defaultRingTimeout = 60 * time.Second
)

// withDefaults returns a copy of c with zero fields filled in.
func (c Config) withDefaults() Config {
	if c.UserAgent == "" {
		c.UserAgent = defaultUserAgent
	}
	if len(c.Media.Codecs) == 0 && !c.Media.DTMF && c.Media.PTime == 0 && c.Media.SRTP == 0 && len(c.Media.Suites) == 0 {
		// A zero media section means the sdp package's defaults.
		addr := c.Media.Addr
		c.Media = sdp.DefaultConfig()
		c.Media.Addr = addr
	}
	if c.T1 <= 0 {
		c.T1 = defaultT1
	}
	if c.OverloadDelay == 0 {
		c.OverloadDelay = 2 * c.T1
	}
	if c.AuthLimit.NonceTTL <= 0 {
		c.AuthLimit.NonceTTL = defaultNonceTTL
	}
	if c.AuthLimit.Failures <= 0 {
		c.AuthLimit.Failures = defaultAuthFails
	}
	if c.AuthLimit.Window <= 0 {
		c.AuthLimit.Window = defaultAuthWindow
	}
	if c.SessionTimers.MinSE <= 0 {
		c.SessionTimers.MinSE = defaultMinSE
	}
	if c.Outbound.RegisterExpires <= 0 {
		c.Outbound.RegisterExpires = time.Hour
	}
	if c.Outbound.RingTimeout <= 0 {
		c.Outbound.RingTimeout = defaultRingTimeout
	}
	if !c.MediaAddr.IsValid() {
		for _, l := range c.Listen {
			if l.Addr.Addr().IsValid() {
				c.MediaAddr = l.Addr.Addr()
				break
			}
		}
	}
	for i := range c.Trunks {
		t := &c.Trunks[i]
		if t.Realm == "" {
			t.Realm = c.Domain
		}
		if t.Realm == "" {
			t.Realm = "tgsip"
		}
		if len(t.Algorithms) == 0 {
			t.Algorithms = []DigestAlgorithm{SHA256, MD5}
		}
	}
	return c
}

// Validate reports configuration mistakes in words a PBX admin understands.
func (c Config) Validate() error {
	var errs []error
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("sip: at least one listener is needed"))
	}
	if c.MaxCalls < 0 {
		errs = append(errs, fmt.Errorf("sip: max_calls %d: use 0 for no cap or a positive number", c.MaxCalls))
	}
	for i, l := range c.Listen {
		switch Transport(strings.ToUpper(string(l.Transport))) {
		case UDP, TCP:
		case TLS:
			if l.CertFile == "" || l.KeyFile == "" {
				errs = append(errs, fmt.Errorf("sip: listen[%d]: tls needs cert_file and key_file", i))
			}
		default:
			errs = append(errs, fmt.Errorf("sip: listen[%d]: transport %q is not udp, tcp or tls", i, l.Transport))
		}
		if !l.Addr.Addr().IsValid() {
			errs = append(errs, fmt.Errorf("sip: listen[%d]: addr is not an IP:port", i))
		}
	}
	if c.RTPPorts.Min == 0 || c.RTPPorts.Max < c.RTPPorts.Min+1 {
		errs = append(errs, fmt.Errorf("sip: rtp_ports %d-%d must hold at least one even/odd pair", c.RTPPorts.Min, c.RTPPorts.Max))
	}
	for i, t := range c.Trunks {
		if len(t.Allow) == 0 && t.Username == "" {
			errs = append(errs, fmt.Errorf("sip: trunks[%d] %q: needs an allow list, a username, or both", i, t.Name))
		}
		if t.Username != "" && t.Password == "" {
			errs = append(errs, fmt.Errorf("sip: trunks[%d] %q: username without password", i, t.Name))
		}
		for _, a := range t.Algorithms {
			if a != MD5 && a != SHA256 {
				errs = append(errs, fmt.Errorf("sip: trunks[%d] %q: digest algorithm %q is not MD5 or SHA-256", i, t.Name, a))
			}
		}
		if err := validSRTP(t.SRTP); err != nil {
			errs = append(errs, fmt.Errorf("sip: trunks[%d] %q: %w", i, t.Name, err))
		}
	}
	if err := validSRTP(c.Outbound.SRTP); err != nil {
		errs = append(errs, fmt.Errorf("sip: outbound: %w", err))
	}
	if (c.Outbound.Register || c.Outbound.OptionsPing > 0) && c.Outbound.URI == "" {
		errs = append(errs, errors.New("sip: outbound.register and outbound.options_ping need outbound.uri"))
	}
	if c.Outbound.Register && c.Outbound.Username == "" {
		errs = append(errs, errors.New("sip: outbound.register needs outbound.username"))
	}
	if err := c.Media.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SessionTimers.Expires > 0 && c.SessionTimers.MinSE > c.SessionTimers.Expires {
		errs = append(errs, errors.New("sip: session_timers.min_se is larger than expires"))
	}
	return errors.Join(errs...)
}

// validSRTP checks a per-trunk SRTP override (nil: none). YAML only
// decodes the three names, but a Config built in code may hold any int.
func validSRTP(p *sdp.SRTPPolicy) error {
	if p != nil && (*p < sdp.SRTPOff || *p > sdp.SRTPRequired) {
		return fmt.Errorf("srtp policy %d is not off, optional or required", int(*p))
	}
	return nil
}

// srtpPolicy is the SRTP policy of a call: the override when set, else
// the global media.srtp.
func (c Config) srtpPolicy(override *sdp.SRTPPolicy) sdp.SRTPPolicy {
	if override != nil {
		return *override
	}
	return c.Media.SRTP
}
