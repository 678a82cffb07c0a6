// Package config is the tgsip configuration file: one struct tree with
// yaml tags, read strictly (an unknown key, a wrong type or an invalid
// value is reported with its file:line:column), defaults in Default, and
// Validate with messages a PBX administrator can act on.
//
// The tree reuses the types of the packages it configures instead of
// copying them: the `sip` section is sip.Config, `routing` is
// b2bua.Routing, each of `telegram.accounts` is account.Config. Their own
// Validate methods check them; this package adds the sections that belong
// to no single package (log, media, telegram server, drain, demo) and the
// checks across sections (a route naming an account that does not exist).
//
// config.example.yaml at the top of the repository shows every setting;
// tests keep it complete and valid. docs/configuration.md is the
// operator's view.
//
// Gaps: the files a configuration names (TLS certificate and key, the
// server's public key, a CA bundle) are opened when the trunk starts, not
// by Load, so check-config does not find a missing one; the file is read
// once, at start (no reload on SIGHUP).
package config

import (
	"net/netip"
	"time"

	"github.com/tgsip/tgsip/b2bua"
	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/account"
)

// Config is the whole configuration file.
type Config struct {
	// Log is where and how tgsip logs.
	Log Log `yaml:"log"`
	// SIP is the SIP side: listeners, trunks (who may call in), SDP
	// policy and the PBX that receives calls from Telegram.
	SIP sip.Config `yaml:"sip"`
	// Media tunes the media bridge between the legs.
	Media Media `yaml:"media"`
	// Telegram is the Telegram server and the trunk's accounts.
	Telegram Telegram `yaml:"telegram"`
	// Routing routes calls both ways.
	Routing b2bua.Routing `yaml:"routing"`
	// Drain is what SIGTERM does.
	Drain Drain `yaml:"drain"`
	// Demo is read only by `tgsip demo`.
	Demo Demo `yaml:"demo"`
}

// Log configures the structured log (log/slog).
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text (logfmt-like, for a terminal or journald) or json.
	Format string `yaml:"format"`
}

// Media tunes the media bridge (package rtpbridge) of every call.
type Media struct {
	// Opus tunes the Opus encoder used when the bridge transcodes.
	Opus Opus `yaml:"opus"`
	// Jitter bounds the jitter buffer of a transcoding bridge.
	Jitter Jitter `yaml:"jitter"`
	// DTMF says how keypad digits cross between SIP and Telegram.
	DTMF DTMF `yaml:"dtmf"`
	// Timeout hangs up a call whose SIP or Telegram side sends no audio
	// for this long (paused while a side holds or mutes); 0 never does.
	Timeout time.Duration `yaml:"timeout"`
	// FillAfter is how long a side may be silent before the bridge sends
	// silence to a SIP peer that expects a steady stream.
	FillAfter time.Duration `yaml:"fill_after"`
}

// Opus tunes the Opus encoder.
type Opus struct {
	// Complexity is libopus's CPU/quality trade-off, 0 (cheapest) to 10.
	Complexity int `yaml:"complexity"`
	// Bitrate in bit/s, within Telegram's 16000–32000.
	Bitrate int `yaml:"bitrate"`
	// PacketLossPercent is the least loss, 0 to 100, the Opus encoder
	// sizes its in-band FEC for; above it the Telegram peer's reported
	// loss drives the FEC. 0 (the default): FEC only on reported loss.
	PacketLossPercent int `yaml:"packet_loss_percent"`
}

// Jitter bounds the jitter buffer.
type Jitter struct {
	// Min and Max bound how long the buffer waits for a late packet
	// before it conceals it; in between the wait follows the measured
	// jitter.
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

// DTMF says how keypad digits cross between SIP and Telegram, which has no
// keypad events: only sound.
type DTMF struct {
	// RenderInband plays RFC 4733 digits from the PBX as tones to the
	// Telegram user.
	RenderInband bool `yaml:"render_inband"`
	// DetectInband detects tones in the Telegram user's audio and sends
	// them to the PBX as RFC 4733 digits (so a Telegram user can drive an
	// IVR by playing tones).
	DetectInband bool `yaml:"detect_inband"`
}

// Telegram is the Telegram server and the trunk's accounts.
type Telegram struct {
	// Server is the MTProto server every account uses unless it names its
	// own. No Telegram server is built in: it must be set (or, in `tgsip
	// demo`, it is the in-process emulator).
	Server Server `yaml:"server"`
	// APIID and APIHash are the application credentials from
	// my.telegram.org for every account that has none of its own; when
	// both places leave them out, TGSIP_API_ID / TGSIP_API_HASH.
	APIID   int    `yaml:"api_id"`
	APIHash string `yaml:"api_hash"`
	// Accounts are the trunk's Telegram accounts, one call each at a time.
	Accounts []account.Config `yaml:"accounts"`
	// RingTimeout ends a call to a Telegram user that has not been
	// answered in this time (480); 0 leaves it to Telegram's own ring
	// timeout (call_ring_timeout_ms, 90 s by default).
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// RetryAfter is the Retry-After of a 503 when every account is busy
	// in a call and none waits out a flood limit.
	RetryAfter time.Duration `yaml:"retry_after"`
	// PeerFloodBackOff is how long an account rests after PEER_FLOOD,
	// which Telegram sends without a wait time.
	PeerFloodBackOff time.Duration `yaml:"peer_flood_backoff"`
	// MediaPort is the UDP socket of the Telegram side's media.
	MediaPort MediaPort `yaml:"media_port"`
}

// MediaPort is the UDP port the Telegram media of every call shares for
// its host candidates (media.NewSharedPort): one socket read in batches
// for all calls, and one port to open in a firewall. Relay candidates
// (Telegram's reflectors, TURN) keep sockets of their own.
type MediaPort struct {
	// Shared turns it on (the default); false gives every call sockets
	// of its own on ephemeral ports.
	Shared bool `yaml:"shared"`
	// Listen is its IP:port. Port 0 takes a free port at start; a fixed
	// port suits a firewall rule. When every account's server is on
	// loopback (the emulator), an unspecified IP (0.0.0.0, ::) means
	// loopback, as all Telegram media then stays on the machine.
	Listen string `yaml:"listen"`
}

// Server is an MTProto server.
type Server struct {
	// Address is IP:port.
	Address string `yaml:"address"`
	// DC is the data-center id the address serves.
	DC int `yaml:"dc"`
	// PublicKeyFile is the server's RSA public key (PEM); a relative path
	// is read from the configuration file's folder.
	PublicKeyFile string `yaml:"public_key_file"`
}

// Drain is what SIGTERM does: stop taking calls (503 to new INVITEs and
// OPTIONS), let active calls finish, then hang up the rest properly.
type Drain struct {
	// Grace is how long active calls may go on after SIGTERM.
	Grace time.Duration `yaml:"grace"`
}

// Demo configures `tgsip demo`: the emulated Telegram network in-process
// with demo users to call.
type Demo struct {
	// SIPListen is where the demo trunk listens for SIP (UDP and TCP)
	// when the file has no sip.listen.
	SIPListen netip.AddrPort `yaml:"sip_listen"`
	// EmulatorListen is the emulated Telegram server's address, for
	// outside MTProto clients (port 0 picks a free one).
	EmulatorListen netip.AddrPort `yaml:"emulator_listen"`
	// PublicKeyFile is where the demo writes the emulator's public key
	// for outside clients; empty: a file in the temporary folder.
	PublicKeyFile string `yaml:"public_key_file"`
	// LoginCode is the code the emulator accepts for every phone login.
	LoginCode string `yaml:"login_code"`
	// InboundTo, when set, makes a demo Telegram user call this SIP URI
	// through the trunk (the Telegram → SIP path).
	InboundTo string `yaml:"inbound_to"`
	// Users are the demo Telegram users the SIP side can call.
	Users []DemoUser `yaml:"users"`
}

// DemoUser is one demo Telegram user.
type DemoUser struct {
	// Name is what a SIP phone dials: sip:NAME@demo-address.
	Name string `yaml:"name"`
	// Behavior is echo, tone, busy, noanswer, private or relayonly.
	Behavior string `yaml:"behavior"`
}

// The demo users' behaviours.
const (
	BehaviorEcho      = "echo"      // answers and sends back what it hears
	BehaviorTone      = "tone"      // answers and plays 1 kHz
	BehaviorBusy      = "busy"      // declines
	BehaviorNoAnswer  = "noanswer"  // rings until the timeout
	BehaviorPrivate   = "private"   // privacy settings forbid the call
	BehaviorRelayOnly = "relayonly" // p2p disallowed: media via the reflector
)

// Behaviors lists every demo behaviour.
var Behaviors = []string{BehaviorEcho, BehaviorTone, BehaviorBusy, BehaviorNoAnswer, BehaviorPrivate, BehaviorRelayOnly}

// Defaults of the sections this package owns. The sip section's defaults
// stay in package sip (sip.NewServer fills them), the routing's in b2bua;
// the media values here match rtpbridge's and rtpbridge/codec's (a test
// checks it).
const (
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "text"
	DefaultOpusComplexity    = 5
	DefaultOpusBitrate       = 32000
	DefaultPacketLossPercent = 0
	DefaultJitterMin         = 20 * time.Millisecond
	DefaultJitterMax         = 200 * time.Millisecond
	DefaultMediaTimeout      = 60 * time.Second
	DefaultFillAfter         = time.Second
	DefaultRetryAfter        = b2bua.DefaultRetryAfter
	DefaultPeerFloodBackOff  = b2bua.DefaultPeerFloodBackOff
	// DefaultMediaPortListen is telegram.media_port.listen: IPv4, a free
	// port chosen at start.
	DefaultMediaPortListen = "0.0.0.0:0"
	DefaultDrainGrace      = 60 * time.Second
	DefaultLoginCode       = "12345"
)

// Default returns the configuration a file starts from: every key the
// file leaves out keeps the value given here. It is the one place the
// defaults of this package's sections live.
func Default() Config {
	users := make([]DemoUser, len(Behaviors))
	for i, b := range Behaviors {
		users[i] = DemoUser{Name: b, Behavior: b}
	}
	return Config{
		Log: Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Media: Media{
			Opus:      Opus{Complexity: DefaultOpusComplexity, Bitrate: DefaultOpusBitrate, PacketLossPercent: DefaultPacketLossPercent},
			Jitter:    Jitter{Min: DefaultJitterMin, Max: DefaultJitterMax},
			DTMF:      DTMF{RenderInband: true},
			Timeout:   DefaultMediaTimeout,
			FillAfter: DefaultFillAfter,
		},
		Telegram: Telegram{RetryAfter: DefaultRetryAfter, PeerFloodBackOff: DefaultPeerFloodBackOff,
			MediaPort: MediaPort{Shared: true, Listen: DefaultMediaPortListen}},
		Drain: Drain{Grace: DefaultDrainGrace},
		Demo: Demo{
			SIPListen:      netip.MustParseAddrPort("127.0.0.1:5060"),
			EmulatorListen: netip.MustParseAddrPort("127.0.0.1:0"),
			LoginCode:      DefaultLoginCode,
			Users:          users,
		},
	}
}
