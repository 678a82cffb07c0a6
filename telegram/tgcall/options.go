package tgcall

import (
	"crypto/rand"
	"io"
	"log/slog"
	"time"

	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/wire"
)

// Options configures a Client. The zero value works on loopback-free hosts
// with Telegram's own timeouts; servers set Transport.
type Options struct {
	// Logger receives structured logs; per-call loggers add call_id and peer.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Random is the entropy source for DH exponents, random ids and SSRCs.
	// Defaults to crypto/rand.
	Random io.Reader
	// Transport holds the process-wide media options (port range, shared
	// port, NAT addresses, interface filter, extra STUN/TURN). It is shared by
	// every call of every Client. Nil means host candidates on all interfaces
	// and no servers beyond what Telegram sends.
	Transport *media.Transport
	// Versions are the library versions we advertise, most preferred first
	// (research/tgcalls.md §3.2: 8.0.0 and 9.0.0 are V2 in current tgcalls).
	// Defaults to wire.Versions.
	Versions []string
	// MaxCalls is how many calls the account carries at once; an incoming
	// call beyond it is discarded as busy (tdesktop Calls::Instance) and Dial
	// fails with ErrBusy. Default 1: a Telegram user has one call at a time.
	MaxCalls int
	// Timeouts override the values from help.getConfig when non-zero.
	Timeouts Timeouts
	// PrepareKeys keeps one Diffie-Hellman key pair ready for the next
	// call (prepared.go): made after Start and again after each call
	// ends, in the background. Placing a call then sends
	// phone.requestCall, and answering one acceptCall, at once instead of
	// after a messages.getDhConfig round trip and a 2048-bit modular
	// exponentiation. A gateway wants it: the SIP caller waits for both.
	// Random must then be safe for concurrent use (crypto/rand is).
	PrepareKeys bool
	// OnIncoming is called (on its own goroutine) for every incoming call
	// that starts ringing; the handler answers with Accept or Decline. With no
	// handler, incoming calls are declined.
	OnIncoming func(*Call)
}

// Timeouts are the call timers Telegram configures in help.getConfig
// (research/tgcalls.md §1.1); zero fields take Telegram's value, and if
// Telegram gives none, tdlib's defaults.
type Timeouts struct {
	// Receive is how long an outgoing call waits for the callee's device to
	// acknowledge it (call_receive_timeout_ms, default 20 s), and how long a
	// key exchange may take.
	Receive time.Duration
	// Ring is how long a call may ring (call_ring_timeout_ms, default 90 s).
	Ring time.Duration
	// Connect is how long media may take to connect after the key exchange
	// (tgcalls V2 hard-codes 20 s in NativeNetworkingImpl; call_connect_timeout_ms
	// is passed but ignored by V2, so the larger of the two is used).
	Connect time.Duration
	// Packet is how long an established call may go without media before it
	// is dropped (call_packet_timeout_ms, default 10 s).
	Packet time.Duration
}

func (t Timeouts) orDefaults() Timeouts {
	if t.Receive <= 0 {
		t.Receive = 20 * time.Second
	}
	if t.Ring <= 0 {
		t.Ring = 90 * time.Second
	}
	if t.Connect <= 0 {
		t.Connect = 20 * time.Second
	}
	if t.Packet <= 0 {
		t.Packet = 10 * time.Second
	}
	return t
}

// merge takes o's non-zero fields over t's.
func (t Timeouts) merge(o Timeouts) Timeouts {
	if o.Receive > 0 {
		t.Receive = o.Receive
	}
	if o.Ring > 0 {
		t.Ring = o.Ring
	}
	if o.Connect > 0 {
		t.Connect = o.Connect
	}
	if o.Packet > 0 {
		t.Packet = o.Packet
	}
	return t
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Random == nil {
		o.Random = rand.Reader
	}
	if len(o.Versions) == 0 {
		o.Versions = wire.Versions
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = 1
	}
}
