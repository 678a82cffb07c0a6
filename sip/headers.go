package sip

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Reason is an RFC 3326 Reason header value: why a call ended, in the
// terms of a protocol (SIP status codes or Q.850 cause values).
type Reason struct {
	Protocol string // "SIP" or "Q.850"
	Cause    int
	Text     string
}

// String formats the header value: `Q.850;cause=16;text="Normal call clearing"`.
func (r Reason) String() string {
	var b strings.Builder
	b.WriteString(r.Protocol)
	b.WriteString(";cause=")
	b.WriteString(strconv.Itoa(r.Cause))
	if r.Text != "" {
		b.WriteString(`;text="`)
		b.WriteString(quoteEscape(sanitizeHeaderText(r.Text)))
		b.WriteByte('"')
	}
	return b.String()
}

// IsZero reports whether r carries nothing.
func (r Reason) IsZero() bool { return r.Protocol == "" }

// sanitizeHeaderText drops control characters so text from the other leg
// cannot inject header lines.
func sanitizeHeaderText(s string) string {
	if len(s) > 128 {
		s = s[:128]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// parseReason parses one Reason header value. Several comma-separated
// values may appear; the first with a known protocol wins.
func parseReason(v string) (Reason, error) {
	if len(v) > 1024 {
		return Reason{}, errors.New("sip: Reason too long")
	}
	for _, one := range splitOutsideQuotes(v, ',') {
		params := splitOutsideQuotes(one, ';')
		proto := strings.TrimSpace(params[0])
		if proto == "" {
			continue
		}
		r := Reason{Protocol: proto, Cause: -1}
		for _, p := range params[1:] {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "cause":
				n, err := strconv.Atoi(strings.TrimSpace(val))
				if err != nil || n < 0 || n > 9999 {
					return Reason{}, errors.New("sip: bad Reason cause")
				}
				r.Cause = n
			case "text":
				val = strings.TrimSpace(val)
				if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
					val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
				}
				r.Text = val
			}
		}
		if r.Cause < 0 {
			return Reason{}, errors.New("sip: Reason without cause")
		}
		return r, nil
	}
	return Reason{}, errors.New("sip: empty Reason")
}

// parseRetryAfter reads the delta-seconds of a Retry-After header
// (RFC 3261 §20.33: `Retry-After: 18000;duration=3600`, or with a
// comment); a missing or malformed header is 0, a huge one maxRetryAfter.
func parseRetryAfter(h sip.Header) time.Duration {
	if h == nil {
		return 0
	}
	v := strings.TrimSpace(h.Value())
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0
	}
	n, err := strconv.ParseInt(v[:end], 10, 64)
	if err != nil || n > int64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(n) * time.Second
}

// splitOutsideQuotes splits s at sep, ignoring separators inside quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case sep:
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// Refresher says who refreshes the session (RFC 4028 §4).
type Refresher string

// The refresher parameter values.
const (
	RefresherNone Refresher = ""
	RefresherUAC  Refresher = "uac"
	RefresherUAS  Refresher = "uas"
)

// sessionExpires is a parsed Session-Expires header.
type sessionExpires struct {
	Interval  time.Duration
	Refresher Refresher
}

// maxSessionInterval caps what a peer may ask for (one day); larger values
// would only keep a dead dialog alive.
const maxSessionInterval = 24 * time.Hour

// parseSessionExpires parses `1800;refresher=uac` (RFC 4028 §4).
func parseSessionExpires(v string) (sessionExpires, error) {
	parts := strings.Split(v, ";")
	d, err := parseDeltaSeconds(parts[0])
	if err != nil {
		return sessionExpires{}, err
	}
	se := sessionExpires{Interval: d}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			switch strings.ToLower(strings.TrimSpace(val)) {
			case "uac":
				se.Refresher = RefresherUAC
			case "uas":
				se.Refresher = RefresherUAS
			default:
				return sessionExpires{}, errors.New("sip: bad refresher")
			}
		}
	}
	return se, nil
}

func (se sessionExpires) String() string {
	s := strconv.Itoa(int(se.Interval / time.Second))
	if se.Refresher != RefresherNone {
		s += ";refresher=" + string(se.Refresher)
	}
	return s
}

// parseDeltaSeconds parses a Min-SE or Session-Expires delta-seconds.
func parseDeltaSeconds(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 10 {
		return 0, errors.New("sip: bad delta-seconds")
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return 0, errors.New("sip: bad delta-seconds")
	}
	d := time.Duration(n) * time.Second
	if d > maxSessionInterval {
		d = maxSessionInterval
	}
	return d, nil
}

// parseRSeq parses an RSeq value (RFC 3262 §7.1: 1..2^31-1).
func parseRSeq(v string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil || n == 0 || n >= 1<<31 {
		return 0, errors.New("sip: bad RSeq")
	}
	return uint32(n), nil
}

// rack is a parsed RAck header: `RSeq CSeq Method` (RFC 3262 §7.2).
type rack struct {
	RSeq   uint32
	CSeq   uint32
	Method string
}

func parseRAck(v string) (rack, error) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return rack{}, errors.New("sip: bad RAck")
	}
	rs, err := parseRSeq(f[0])
	if err != nil {
		return rack{}, err
	}
	cs, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return rack{}, errors.New("sip: bad RAck CSeq")
	}
	return rack{RSeq: rs, CSeq: uint32(cs), Method: strings.ToUpper(f[2])}, nil
}

// DTMF is one key press received in a SIP INFO.
type DTMF struct {
	Digit    byte // 0-9, *, #, A-D, or 'F' for flash
	Duration time.Duration
}

// parseDTMFInfo reads an INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5" or an event code).
func parseDTMFInfo(contentType string, body []byte) (DTMF, error) {
	if len(body) > 512 {
		return DTMF{}, errors.New("sip: dtmf body too long")
	}
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch ct {
	case "application/dtmf-relay":
		var d DTMF
		for _, line := range strings.FieldsFunc(string(body), func(r rune) bool { return r == '\n' || r == '\r' }) {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "signal":
				digit, ok := dtmfDigit(v)
				if !ok {
					return DTMF{}, errors.New("sip: bad dtmf signal")
				}
				d.Digit = digit
			case "duration":
				ms, err := strconv.ParseUint(v, 10, 16)
				if err != nil {
					return DTMF{}, errors.New("sip: bad dtmf duration")
				}
				d.Duration = time.Duration(ms) * time.Millisecond
			}
		}
		if d.Digit == 0 {
			return DTMF{}, errors.New("sip: dtmf-relay without signal")
		}
		return d, nil
	case "application/dtmf":
		digit, ok := dtmfDigit(strings.TrimSpace(string(body)))
		if !ok {
			return DTMF{}, errors.New("sip: bad application/dtmf body")
		}
		return DTMF{Digit: digit}, nil
	}
	return DTMF{}, errors.New("sip: not a dtmf content type")
}

// dtmfDigit maps a Signal value — a character or an RFC 4733 event code —
// to its key.
func dtmfDigit(v string) (byte, bool) {
	if len(v) == 1 {
		c := v[0]
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#':
			return c, true
		case c >= 'A' && c <= 'D':
			return c, true
		case c >= 'a' && c <= 'd':
			return c - 'a' + 'A', true
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	switch {
	case n >= 0 && n <= 9:
		return byte('0' + n), true
	case n == 10:
		return '*', true
	case n == 11:
		return '#', true
	case n >= 12 && n <= 15:
		return byte('A' + n - 12), true
	case n == 16:
		return 'F', true
	}
	return 0, false
}
