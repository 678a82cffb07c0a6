package sip

import (
	"net/netip"
	"sync"
	"time"
)

// The failed-authentication limit (docs/sip-leg.md, "Failed
// authentication"):
//
//   - A source is an IPv4 address or an IPv6 /64 (one host usually owns
//     a whole /64, RFC 7421 §2, so per-address counting would let it
//     rotate addresses).
//   - Failures are counted per source and per channel: datagrams (UDP,
//     whose source address anyone can forge) and streams (TCP/TLS, whose
//     address the handshake proves). A stream request is never refused
//     for UDP failures, so a forged UDP flood cannot lock out a PBX that
//     connects over TCP or TLS.
//   - Each source has Failures attempts per Window; reaching them blocks
//     it for Window, and each further block of the same source doubles
//     (Window, 2·Window, 4·Window … capped at maxAuthBackoff). A block
//     history is forgotten after authStrikeMemory without a block, or
//     at the source's next successful authentication.
//   - A UDP source on the allowlist of a digest trunk is not blocked: a
//     guesser must receive our challenges to guess, so it would have to
//     sit on the PBX's own network; anyone else can only forge the
//     address, and a block would then lock out the real PBX.
//   - A TCP/TLS connection that has authenticated is not blocked for the
//     rest of its life (authed, refreshed by each success).
const (
	maxAuthBackoff   = time.Hour
	authStrikeMemory = 24 * time.Hour
	authedMemory     = time.Hour
	maxAuthSources   = 65536
)

// authKey is one counted source on one channel.
type authKey struct {
	src    netip.Prefix
	stream bool
}

// authRecord is what the limiter remembers of a source.
type authRecord struct {
	windowStart time.Time
	fails       int       // failures in the current window
	strikes     int       // blocks so far; each doubles the next
	until       time.Time // blocked until
	lastBlock   time.Time
}

// authLimiter counts failed authentications (see above).
type authLimiter struct {
	failures int
	window   time.Duration

	mu      sync.Mutex
	records map[authKey]*authRecord
	authed  map[netip.AddrPort]time.Time // stream connections that authenticated
}

func newAuthLimiter(l AuthLimitConfig) *authLimiter {
	return &authLimiter{
		failures: l.Failures,
		window:   l.Window,
		records:  map[authKey]*authRecord{},
		authed:   map[netip.AddrPort]time.Time{},
	}
}

// sourceOf is the prefix failures are counted on.
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

func keyOf(src netip.AddrPort, stream bool) authKey {
	return authKey{src: sourceOf(src.Addr()), stream: stream}
}

// blocked reports whether src may not try now, and until when.
func (l *authLimiter) blocked(src netip.AddrPort, stream bool, now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream {
		if t, ok := l.authed[src]; ok && now.Sub(t) < authedMemory {
			return false, time.Time{}
		}
	}
	r := l.records[keyOf(src, stream)]
	if r == nil || !now.Before(r.until) {
		return false, time.Time{}
	}
	return true, r.until
}

// fail counts a failure of src; it reports whether src is now blocked.
func (l *authLimiter) fail(src netip.AddrPort, stream bool, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := keyOf(src, stream)
	r := l.records[k]
	if r != nil && r.forgettable(now) {
		r = nil
	}
	if r == nil {
		if len(l.records) >= maxAuthSources && !l.sweep(now) {
			// A spray of sources filled the table: the newcomer is not
			// tracked (the sources already tracked stay blocked).
			return false
		}
		r = &authRecord{windowStart: now}
		l.records[k] = r
	}
	if now.Sub(r.windowStart) > l.window {
		r.windowStart, r.fails = now, 0
	}
	r.fails++
	if r.fails < l.failures {
		return false
	}
	r.strikes++
	d := l.window << min(r.strikes-1, 20)
	if d > maxAuthBackoff || d <= 0 {
		d = max(maxAuthBackoff, l.window)
	}
	r.until, r.lastBlock = now.Add(d), now
	r.windowStart, r.fails = r.until, 0
	return true
}

// succeed forgets the failures of src on its channel and remembers an
// authenticated stream connection.
func (l *authLimiter) succeed(src netip.AddrPort, stream bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.records, keyOf(src, stream))
	if !stream {
		return
	}
	if len(l.authed) >= maxAuthSources {
		for a, t := range l.authed {
			if now.Sub(t) >= authedMemory {
				delete(l.authed, a)
			}
		}
		if len(l.authed) >= maxAuthSources {
			return
		}
	}
	l.authed[src] = now
}

// sweep drops forgettable records; it reports whether there is room.
func (l *authLimiter) sweep(now time.Time) bool {
	for k, r := range l.records {
		if r.forgettable(now) {
			delete(l.records, k)
		}
	}
	return len(l.records) < maxAuthSources
}

// forgettable: not blocked, and no block for authStrikeMemory.
func (r *authRecord) forgettable(now time.Time) bool {
	if now.Before(r.until) {
		return false
	}
	last := r.lastBlock
	if r.windowStart.After(last) {
		last = r.windowStart
	}
	return now.Sub(last) > authStrikeMemory
}
