package sip

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// udpMaxDatagram is the largest UDP payload (65535 minus the IPv4 and UDP
// headers).
const udpMaxDatagram = 65507

func init() {
	// sipgo refuses to write any UDP message over UDPMTUSize-200 bytes
	// (1300 by default) and returns ErrUDPMTUCongestion: a 200 OK to an
	// INVITE that came through a few proxies (four Via, three
	// Record-Route) never left. RFC 3261 §18.2.2 sends a response back
	// the way the request came, whatever its size (IP fragments it);
	// only requests move to TCP above 1300 bytes (§18.1.1), and ours
	// stay under that (docs/sip-leg.md). sipgo has no per-transport
	// option for it, so the package variable is raised once, before any
	// transport exists; the kernel still refuses datagrams over 64 KB.
	sip.UDPMTUSize = udpMaxDatagram + 200
}

// WireStats counts what went wrong on the wire; fields are read with
// atomic loads.
type WireStats struct {
	Malformed      atomic.Uint64 // requests refused by validateRequest
	SendFailures   atomic.Uint64 // responses that could not be written
	StreamDiscards atomic.Uint64 // unparsable messages dropped from TCP/TLS streams
}

// Wire returns the wire counters.
func (s *Server) Wire() *WireStats { return &s.wire }

// sendFailed logs and counts a response that did not leave. A CANCEL
// that won the race (sipgo sent 487 instead) is not a failure.
func (s *Server) sendFailed(code int, req *sip.Request, err error) {
	if errors.Is(err, sip.ErrTransactionCanceled) {
		return
	}
	s.wire.SendFailures.Add(1)
	s.log.Warn("response not sent", "status", code, "method", clip(string(req.Method), 32), "dst", req.Source(), "err", err)
}

// maxStreamHeader bounds the header section we buffer while looking for
// its end on a stream; sipgo's own limit for a whole message is larger.
const maxStreamHeader = 64 << 10

// streamFilter frames TCP and TLS streams before sipgo's stream parser
// sees them. sipgo closes a connection on the first parse error, and a
// request read in the same chunk as the garbage behind it loses its
// answer with the connection (RFC 3261 §18.3 only says the stream cannot
// be resynchronized when framing fails). So each complete message is
// parsed here first: one that sipgo could not parse is dropped and
// counted while the stream goes on (its Content-Length still frames it);
// bytes that cannot be framed at all (no header end within 64 KB, a bad
// Content-Length) make the connection deaf: everything after them is
// dropped, and the messages before them still get their answers. The
// peer closes it, or Close does.
type streamFilter struct {
	// onBad answers a request sipgo could not parse (badreq.go); nil
	// leaves them unanswered.
	onBad func(sip.TransportReadProps, []byte)
	// udp, when set, remembers each datagram so that sipgo's own parse
	// failure can be answered (udpwatch.go); nil parses datagrams here.
	udp    *udpWatch
	parser *sip.Parser
	stats  *WireStats
	mu     sync.Mutex
	conns  map[string]*streamState // only streams with buffered bytes or gone deaf
	now    func() time.Time
}

type streamState struct {
	buf  []byte
	deaf bool
	last time.Time
}

func newStreamFilter(stats *WireStats) *streamFilter {
	return &streamFilter{parser: sip.NewParser(), stats: stats, conns: map[string]*streamState{}, now: time.Now}
}

// wireHooks returns the server's sip.TransportReadFilter and the logger
// for sipgo's transport layer (made from log), which together answer the
// datagrams sipgo cannot parse (udpwatch.go).
func (s *Server) wireHooks(log *slog.Logger) (sip.TransportReadFilter, *slog.Logger) {
	f := newStreamFilter(&s.wire)
	f.onBad = s.answerUnparsable
	f.udp = newUDPWatch(s.answerUnparsable)
	return f.filter, slog.New(parseFailHook{next: log.Handler(), watch: f.udp})
}

// filter is a sip.TransportReadFilter. A datagram sipgo cannot parse is
// answered (onBad) instead of being dropped silently; streams are framed.
func (f *streamFilter) filter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if p.Transport == "UDP" || p.Transport == "udp" {
		if f.onBad == nil || len(bytes.Trim(data, "\r\n\x00")) == 0 {
			return data, nil
		}
		if f.udp != nil {
			if out, ok := f.udp.remember(p, data); ok {
				return out, nil // sipgo parses it next; a failure reaches f.udp
			}
		}
		if _, err := f.parser.ParseSIP(data); err != nil {
			f.onBad(p, data)
			return nil, nil
		}
		return data, nil
	}
	out, bad := f.stream(p, data)
	if f.onBad != nil {
		for _, m := range bad {
			f.onBad(p, m)
		}
	}
	return out, nil
}

// stream frames one read of a TCP/TLS connection; bad are the complete
// messages sipgo could not parse.
func (f *streamFilter) stream(p sip.TransportReadProps, data []byte) (out []byte, bad [][]byte) {
	key := addrKey(p.LocalAddr) + "|" + addrKey(p.RemoteAddr)
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.conns[key]
	if st == nil {
		if len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0 {
			return data, nil // RFC 5626 §3.5.1 keep-alive: sipgo answers it
		}
		st = &streamState{}
	} else if st.deaf {
		st.last = f.now()
		return nil, nil
	}
	st.buf = append(st.buf, data...)
	st.last = f.now()
	out, rest, bad, deaf := f.frame(st.buf)
	switch {
	case deaf:
		f.stats.StreamDiscards.Add(1)
		st.buf, st.deaf = nil, true
		f.keep(key, st)
	case len(rest) == 0:
		delete(f.conns, key)
	default:
		st.buf = append([]byte(nil), rest...)
		f.keep(key, st)
	}
	return out, bad
}

// keep stores a stream's state, forgetting states idle for long (their
// connection is likely gone: sipgo offers no close hook to the filter).
func (f *streamFilter) keep(key string, st *streamState) {
	if len(f.conns) >= 1024 {
		cutoff := f.now().Add(-5 * time.Minute)
		for k, v := range f.conns {
			if v.last.Before(cutoff) {
				delete(f.conns, k)
			}
		}
	}
	f.conns[key] = st
}

// frame splits buf into complete messages. It returns the bytes of those
// sipgo parses (for its stream parser), the incomplete tail, copies of the
// messages it could not parse, and whether the stream lost its framing.
func (f *streamFilter) frame(buf []byte) (out, rest []byte, bad [][]byte, deaf bool) {
	for len(buf) > 0 {
		// CRLFs between messages (RFC 3261 §7.5; keep-alives).
		if trimmed := bytes.TrimLeft(buf, "\r\n"); len(trimmed) != len(buf) {
			buf = trimmed
			continue
		}
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 {
			if len(buf) > maxStreamHeader {
				return out, nil, bad, true
			}
			return out, buf, bad, false
		}
		n, extra, ok := contentLength(buf[:end+2])
		if !ok {
			return out, nil, bad, true
		}
		total := end + 4 + n
		if len(buf) < total {
			if total-len(buf) > sip.ParseMaxMessageLength {
				return out, nil, bad, true
			}
			return out, buf, bad, false
		}
		msg := buf[:total]
		if len(extra) > 0 {
			msg = renameExtraLengths(msg, extra)
		}
		if f.parses(msg) {
			out = append(out, msg...)
		} else {
			f.stats.StreamDiscards.Add(1)
			bad = append(bad, append([]byte(nil), msg...))
		}
		buf = buf[total:]
	}
	return out, nil, bad, false
}

// parses reports whether sipgo's stream parser reads msg as exactly one
// complete message (its datagram parser is laxer: a message without
// Content-Length would leave the stream parser waiting for a body).
func (f *streamFilter) parses(msg []byte) bool {
	n := 0
	err := f.parser.NewSIPStream().ParseSIPStream(msg, func(sip.Message) { n++ })
	return err == nil && n == 1
}

// contentLength finds the first Content-Length (or "l") of a header
// section, which frames the body here. Missing means 0 (RFC 3261 §18.3
// requires it on streams; sipgo reads its absence so); an unparsable or
// negative value loses the framing. extra holds the offsets of further
// Content-Length lines: sipgo's stream parser would frame with the last
// one, so they are renamed (renameExtraLengths) and validateRequest
// answers the request 400, as it does on UDP.
func contentLength(head []byte) (n int, extra []int, ok bool) {
	seen := false
	off := 0
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		start := off
		off += len(line) + 2
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, val, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		name = bytes.TrimSpace(name)
		if !bytes.EqualFold(name, []byte("Content-Length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		if seen {
			extra = append(extra, start)
			continue
		}
		v, err := strconv.Atoi(string(bytes.TrimSpace(val)))
		if err != nil || v < 0 {
			return 0, nil, false
		}
		n, seen = v, true
	}
	return n, extra, true
}

// extraLengthHeader replaces the name of a second Content-Length on a
// stream (see contentLength).
const extraLengthHeader = "X-Tgsip-Extra-Content-Length"

// renameExtraLengths returns a copy of msg with the header names at the
// given line offsets replaced by extraLengthHeader.
func renameExtraLengths(msg []byte, offsets []int) []byte {
	var out []byte
	prev := 0
	for _, o := range offsets {
		colon := bytes.IndexByte(msg[o:], ':')
		out = append(out, msg[prev:o]...)
		out = append(out, extraLengthHeader...)
		prev = o + colon
	}
	return append(out, msg[prev:]...)
}

func addrKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
