package sip

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A datagram sipgo cannot parse is dropped in its UDP read loop before
// any handler of ours runs, where RFC 3261 §8.2 and RFC 4475 §3.1.2 want
// a 400 (badreq.go). Parsing every datagram a second time in the read
// filter to find those costs ~5 µs and 31 allocations per message, on
// every INVITE, ACK and BYE. Instead sipgo's own parse is reused: its UDP
// transport reports a failed parse on its logger, on the reading
// goroutine, as an error record "failed to parse" with the datagram as
// "data" (sipgo v1.7.3 transport_udp.go parseAndHandle), but without the
// addresses an answer needs. So the read filter, which runs on the same
// goroutine just before that parse, keeps a copy of each datagram and its
// addresses per listening socket (udpWatch.remember, no allocation), and
// the transport logger's handler (parseFailHook) looks the failed
// datagram up there and answers it. TestTorture and
// TestMalformedNeverReachesHandler send unparsable requests over UDP and
// want the answer, so a sipgo that reports parse failures differently
// fails them.

// sipgoParseFailed is the message of sipgo's log record for a datagram
// (or stream message) its parser refused.
const sipgoParseFailed = "failed to parse"

// maxUDPWatchSlots bounds the sockets remembered; sipgo opens client
// sockets of its own, and a slot outlives its socket. Past the bound the
// slots start over (a datagram being parsed at that moment then goes
// unanswered, as sipgo alone would leave it).
const maxUDPWatchSlots = 64

// udpWatch remembers the last datagram read on each UDP socket.
type udpWatch struct {
	mu    sync.Mutex
	slots map[*net.UDPAddr]*udpSlot // by the socket's LocalAddr, which net returns as the same pointer each time
	onBad func(sip.TransportReadProps, []byte)
}

type udpSlot struct {
	props sip.TransportReadProps
	data  []byte // a copy; the buffer is reused
	armed bool   // not yet matched with a parse failure
}

func newUDPWatch(onBad func(sip.TransportReadProps, []byte)) *udpWatch {
	return &udpWatch{slots: map[*net.UDPAddr]*udpSlot{}, onBad: onBad}
}

// remember keeps data, read on the socket of p.LocalAddr, until the next
// datagram of that socket, an INVITE with its read time (stampInvite). It
// returns the copy for sipgo to parse (valid until the socket's next
// datagram, which sipgo reads only after parsing this one), or false when
// p does not name a UDP socket (the caller then checks the datagram
// itself).
func (w *udpWatch) remember(p sip.TransportReadProps, data []byte) ([]byte, bool) {
	la, ok := p.LocalAddr.(*net.UDPAddr)
	if !ok || la == nil {
		return nil, false
	}
	w.mu.Lock()
	sl := w.slots[la]
	if sl == nil {
		if len(w.slots) >= maxUDPWatchSlots {
			clear(w.slots)
		}
		sl = &udpSlot{}
		w.slots[la] = sl
	}
	sl.props = p
	sl.data = stampInvite(sl.data[:0], data, time.Now())
	sl.armed = true
	out := sl.data
	w.mu.Unlock()
	return out, true
}

// failed answers the remembered datagram sipgo could not parse; it
// reports whether data was one.
func (w *udpWatch) failed(data string) bool {
	w.mu.Lock()
	var props sip.TransportReadProps
	found := false
	for _, sl := range w.slots {
		if sl.armed && string(sl.data) == data {
			sl.armed, props, found = false, sl.props, true
			break
		}
	}
	w.mu.Unlock()
	if found && w.onBad != nil {
		w.onBad(props, []byte(data))
	}
	return found
}

// parseFailHook is the slog handler of sipgo's transport layer: it hands
// UDP parse failures to the watch and passes every record on to next.
type parseFailHook struct {
	next  slog.Handler
	watch *udpWatch
}

// Enabled lets error records through whatever next's level, so a parse
// failure is seen even when the log discards errors.
func (h parseFailHook) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h parseFailHook) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level == slog.LevelError && rec.Message == sipgoParseFailed {
		var data string
		found := false
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "data" && a.Value.Kind() == slog.KindString {
				data, found = a.Value.String(), true
				return false
			}
			return true
		})
		if found && h.watch.failed(data) {
			// Handled (answered and counted in Wire().Malformed when
			// it can be addressed, else dropped, as before); an error
			// line for each datagram a scanner sends would be log spam
			// anyone can cause, so the record goes on at debug.
			rec = rec.Clone()
			rec.Level = slog.LevelDebug
		}
	}
	if !h.next.Enabled(ctx, rec.Level) {
		return nil
	}
	return h.next.Handle(ctx, rec)
}

func (h parseFailHook) WithAttrs(as []slog.Attr) slog.Handler {
	return parseFailHook{next: h.next.WithAttrs(as), watch: h.watch}
}

func (h parseFailHook) WithGroup(name string) slog.Handler {
	return parseFailHook{next: h.next.WithGroup(name), watch: h.watch}
}
