package sdp

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// MaxBodySize bounds the SDP bodies Parse and Session accept. A real audio
// offer is well under 2 KiB; the bound keeps hostile input cheap.
const MaxBodySize = 64 << 10

// Errors returned (wrapped) by Parse.
var (
	// ErrMalformed: the body is not an SDP session description.
	ErrMalformed = errors.New("sdp: malformed session description")
	// ErrNoAudio: the description has no audio m-line.
	ErrNoAudio = errors.New("sdp: no audio stream")
)

// Media is one audio stream of a remote session description, as Parse
// reads it: the first audio m-line that is not rejected (port zero), or the
// first audio m-line when all of them are.
type Media struct {
	// Addr is the RTP destination: the media-level c= address, else the
	// session-level one (RFC 8866 §5.7), and the m-line port. Port 0 means
	// the stream is rejected or disabled (RFC 3264 §5.1, §6). An
	// unspecified address (0.0.0.0) is RFC 2543-style hold (RFC 3264 §8.4).
	Addr netip.AddrPort
	// RTCPAddr is where RTCP goes: a=rtcp (RFC 3605 §2.1) when present,
	// else the RTP port plus one (RFC 3550 §11). With RTCP multiplexing
	// negotiated RTCP uses Addr instead (RFC 5761 §5.1.3).
	RTCPAddr netip.AddrPort
	// RTCPMux is set when the stream carries a=rtcp-mux (RFC 5761 §5.1.1).
	RTCPMux bool
	// Proto is the m-line transport, e.g. "RTP/AVP" or "RTP/SAVP".
	Proto string
	// Codecs lists every payload format of the m-line that could be
	// identified (rtpmap, or RFC 3551 static type), in the m-line's order,
	// which is the writer's preference (RFC 3264 §5.1); telephone-event
	// and comfort noise are included.
	Codecs []Codec
	// DTMF points at the first telephone-event entry of Codecs, nil when
	// there is none (RFC 4733 §7.1.1).
	DTMF *Codec
	// Direction is the media-level direction attribute, else the
	// session-level one, else sendrecv (RFC 3264 §5.1, RFC 8866 §6.7).
	Direction Direction
	// PTime and MaxPTime are the a=ptime and a=maxptime values in
	// milliseconds, 0 when absent (RFC 8866 §6.4, §6.5).
	PTime, MaxPTime int
	// Crypto holds the SDES lines the trunk could parse, in the writer's
	// order of preference (RFC 4568 §5.1).
	Crypto []Crypto
	// BadCrypto counts a=crypto lines that were skipped: unsupported
	// suite, wrong key length or bad syntax.
	BadCrypto int
	// Ice is set when the description carries ICE attributes
	// (a=ice-ufrag, a=candidate). The trunk does not do ICE and answers
	// without them; ICE is only used when both sides signal it (RFC 8839
	// §4.1), so the peer falls back to the c=/m= address.
	Ice bool
	// Index is the position of this m-line among all m-lines (0-based).
	Index int
}

// Parse reads a remote session description and returns its audio stream.
// It never panics; anything that is not a usable SDP body is an error
// wrapping ErrMalformed or ErrNoAudio.
func Parse(body []byte) (*Media, error) {
	d, err := parseDescription(body)
	if err != nil {
		return nil, err
	}
	return d.primaryAudio()
}

// description is a whole remote SDP body: every m-line, so an answer can
// mirror their count and order (RFC 3264 §6), and the audio ones parsed.
type description struct {
	sessionID, version string // o= fields, verbatim
	lines              []mline
}

// mline is one m= section.
type mline struct {
	media   string // "audio", "video", "image", …
	proto   string
	port    int
	formats []string
	audio   *Media // parsed when media == "audio"
	err     error  // why audio could not be parsed
}

// primaryAudio picks the stream Parse reports.
func (d *description) primaryAudio() (*Media, error) {
	var first *mline
	for i := range d.lines {
		l := &d.lines[i]
		if l.media != "audio" {
			continue
		}
		if first == nil {
			first = l
		}
		if l.port != 0 {
			return l.result()
		}
	}
	if first == nil {
		return nil, ErrNoAudio
	}
	return first.result()
}

func (l *mline) result() (*Media, error) {
	if l.err != nil {
		return nil, l.err
	}
	return l.audio, nil
}

// attr is one a= line split at the first colon.
type attr struct{ key, value string }

// section collects the lines of the session part or of one m= section.
type section struct {
	conn  string
	attrs []attr
}

// parseDescription scans the body line by line. It is deliberately more
// tolerant than the RFC 8866 §5 grammar — records may use bare LF (which
// §5 asks parsers to accept), appear out of the canonical order, or have
// types we do not know (ignored) — because PBXs and phones get details
// wrong and a call is worth more than strictness. What it must have: v=0
// first and at least one well-formed m= line.
func parseDescription(body []byte) (*description, error) {
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%w: body of %d bytes", ErrMalformed, len(body))
	}
	d := &description{}
	var sess section
	var secs []section // one per m-line
	cur := &sess
	first := true
	for rest := string(body); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return nil, fmt.Errorf("%w: line %q is not <type>=<value>", ErrMalformed, clip(line))
		}
		typ, val := line[0], line[2:]
		if first {
			// RFC 8866 §5: "v=0" comes first.
			if typ != 'v' || strings.TrimSpace(val) != "0" {
				return nil, fmt.Errorf("%w: does not start with v=0", ErrMalformed)
			}
			first = false
			continue
		}
		switch typ {
		case 'o':
			if len(secs) == 0 {
				if f := strings.Fields(val); len(f) >= 3 {
					d.sessionID, d.version = f[1], f[2]
				}
			}
		case 'c':
			cur.conn = val
		case 'a':
			k, v, _ := strings.Cut(val, ":")
			cur.attrs = append(cur.attrs, attr{strings.TrimSpace(k), strings.TrimSpace(v)})
		case 'm':
			ml, err := parseMLine(val)
			if err != nil {
				return nil, err
			}
			d.lines = append(d.lines, ml)
			secs = append(secs, section{})
			cur = &secs[len(secs)-1]
		}
	}
	if first {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if len(d.lines) == 0 {
		return nil, ErrNoAudio
	}
	for i := range d.lines {
		l := &d.lines[i]
		if l.media == "audio" {
			l.audio, l.err = parseAudio(l, i, &sess, &secs[i])
		}
	}
	return d, nil
}

// parseMLine parses "m=<media> <port>[/<count>] <proto> <fmt> ..."
// (RFC 8866 §5.14).
func parseMLine(val string) (mline, error) {
	f := strings.Fields(val)
	if len(f) < 3 {
		return mline{}, fmt.Errorf("%w: m-line %q", ErrMalformed, clip(val))
	}
	portStr, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return mline{}, fmt.Errorf("%w: m-line port %q", ErrMalformed, clip(f[1]))
	}
	return mline{media: f[0], port: int(port), proto: f[2], formats: f[3:]}, nil
}

// parseAudio interprets one audio m= section.
func parseAudio(l *mline, index int, sess, sec *section) (*Media, error) {
	m := &Media{Proto: l.proto, Index: index}
	conn := sec.conn
	if conn == "" {
		conn = sess.conn
	}
	if l.port != 0 || conn != "" {
		addr, err := parseConnection(conn)
		if err != nil {
			return m, err
		}
		m.Addr = netip.AddrPortFrom(addr, uint16(l.port))
	}
	if l.port != 0 {
		m.RTCPAddr = netip.AddrPortFrom(m.Addr.Addr(), uint16(l.port+1))
		if l.port == math.MaxUint16 {
			m.RTCPAddr = netip.AddrPortFrom(m.Addr.Addr(), 0)
		}
	}
	for _, a := range sess.attrs {
		if d, ok := parseDirection(a.key); ok {
			m.Direction = d
		}
		if isICE(a.key) {
			m.Ice = true
		}
	}
	rtpmap := map[uint8]Codec{}
	fmtp := map[uint8]string{}
	for _, a := range sec.attrs {
		if d, ok := parseDirection(a.key); ok {
			m.Direction = d // media level overrides session level (RFC 8866 §6.7)
			continue
		}
		if isICE(a.key) {
			m.Ice = true
			continue
		}
		switch a.key {
		case "rtpmap":
			if c, ok := parseRtpmap(a.value); ok {
				if _, dup := rtpmap[c.PayloadType]; !dup {
					rtpmap[c.PayloadType] = c
				}
			}
		case "fmtp":
			ptStr, params, _ := strings.Cut(a.value, " ")
			if pt, ok := parsePT(ptStr); ok {
				if _, dup := fmtp[pt]; !dup {
					fmtp[pt] = strings.TrimSpace(params)
				}
			}
		case "ptime":
			m.PTime = parseMillis(a.value)
		case "maxptime":
			m.MaxPTime = parseMillis(a.value)
		case "rtcp-mux":
			m.RTCPMux = true
		case "rtcp":
			if ap, ok := parseRTCP(a.value, m.Addr.Addr()); ok {
				m.RTCPAddr = ap
			}
		case "crypto":
			if c, err := ParseCrypto(a.value); err == nil {
				m.Crypto = append(m.Crypto, c)
			} else {
				m.BadCrypto++
			}
		}
	}
	seen := map[uint8]bool{}
	for _, f := range l.formats {
		pt, ok := parsePT(f)
		if !ok || seen[pt] {
			continue
		}
		seen[pt] = true
		c, ok := rtpmap[pt]
		if !ok {
			// RFC 3551 §6: static types need no rtpmap; a dynamic type
			// without one cannot be identified and is skipped.
			if c, ok = staticCodec(pt); !ok {
				continue
			}
		}
		c.Fmtp = fmtp[pt]
		m.Codecs = append(m.Codecs, c)
	}
	for i := range m.Codecs {
		if m.Codecs[i].Name == TelephoneEvent {
			m.DTMF = &m.Codecs[i]
			break
		}
	}
	return m, nil
}

func isICE(key string) bool {
	return key == "ice-ufrag" || key == "ice-pwd" || key == "candidate" || key == "ice-lite"
}

// parseConnection parses "IN IP4|IP6 <address>[/ttl[/count]]"
// (RFC 8866 §5.7). Host names are refused: resolving them is not this
// package's job and PBXs send literals.
func parseConnection(val string) (netip.Addr, error) {
	f := strings.Fields(val)
	if len(f) < 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		if val == "" {
			return netip.Addr{}, fmt.Errorf("%w: no c= line for the audio stream", ErrMalformed)
		}
		return netip.Addr{}, fmt.Errorf("%w: c=%q", ErrMalformed, clip(val))
	}
	host, _, _ := strings.Cut(f[2], "/")
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not an IP literal", ErrMalformed, clip(host))
	}
	return addr.Unmap(), nil
}

// parseRtpmap parses "<pt> <name>/<rate>[/<channels>]" (RFC 8866 §6.6).
func parseRtpmap(val string) (Codec, bool) {
	ptStr, enc, ok := strings.Cut(val, " ")
	if !ok {
		return Codec{}, false
	}
	pt, ok := parsePT(ptStr)
	if !ok {
		return Codec{}, false
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return Codec{}, false
	}
	rate, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || rate == 0 {
		return Codec{}, false
	}
	ch := 1
	if len(parts) == 3 {
		n, err := strconv.ParseUint(parts[2], 10, 8)
		if err != nil || n == 0 {
			return Codec{}, false
		}
		ch = int(n)
	}
	return Codec{Name: normalizeName(parts[0]), PayloadType: pt, ClockRate: uint32(rate), Channels: ch}, true
}

// parsePT parses an RTP payload type, 0-127 (RFC 3550 §5.1: 7 bits).
func parsePT(s string) (uint8, bool) {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n > 127 {
		return 0, false
	}
	return uint8(n), true
}

// parseMillis reads a ptime/maxptime value. RFC 8866 §6.4 allows a
// decimal fraction ("20.0" is seen in the wild); values are rounded and
// implausible ones (over ten seconds) ignored.
func parseMillis(s string) int {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 1 || v > 10000 {
		return 0
	}
	return int(math.Round(v))
}

// parseRTCP parses "a=rtcp:<port> [IN IP4|IP6 <addr>]" (RFC 3605 §2.1);
// without an address, RTCP goes to the RTP address.
func parseRTCP(val string, rtpAddr netip.Addr) (netip.AddrPort, bool) {
	portStr, conn, _ := strings.Cut(val, " ")
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, false
	}
	addr := rtpAddr
	if conn = strings.TrimSpace(conn); conn != "" {
		if addr, err = parseConnection(conn); err != nil {
			return netip.AddrPort{}, false
		}
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}
