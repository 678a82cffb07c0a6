package sip

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icholy/digest"
)

func TestAuthBackoffGrows(t *testing.T) {
	l := newAuthLimiter(AuthLimitConfig{Failures: 3, Window: time.Minute})
	src := netip.MustParseAddrPort("203.0.113.7:5060")
	now := time.Unix(1_000_000, 0)
	for round, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
		for i := 0; i < 3; i++ {
			if b, _ := l.blocked(src, false, now); b {
				t.Fatalf("round %d try %d: blocked before the limit", round, i)
			}
			blocked := l.fail(src, false, now)
			if blocked != (i == 2) {
				t.Fatalf("round %d try %d: blocked=%v", round, i, blocked)
			}
		}
		if b, until := l.blocked(src, false, now); !b || until.Sub(now) != want {
			t.Fatalf("round %d: blocked=%v for %v, want %v", round, b, until.Sub(now), want)
		}
		now = now.Add(want - time.Second)
		if b, _ := l.blocked(src, false, now); !b {
			t.Fatalf("round %d: unblocked before the back-off ended", round)
		}
		now = now.Add(time.Second)
	}
	// The back-off is capped.
	for round := 0; round < 10; round++ {
		for i := 0; i < 3; i++ {
			l.fail(src, false, now)
		}
		_, until := l.blocked(src, false, now)
		if d := until.Sub(now); d > maxAuthBackoff {
			t.Fatalf("back-off %v over the cap", d)
		}
		now = until
	}
	// A success forgets the history.
	l.succeed(src, false, now)
	l.fail(src, false, now)
	l.fail(src, false, now)
	if b, _ := l.blocked(src, false, now); b {
		t.Fatal("blocked after a success and two failures")
	}
}

func TestAuthLimitIPv6Per64(t *testing.T) {
	l := newAuthLimiter(AuthLimitConfig{Failures: 2, Window: time.Minute})
	now := time.Unix(1_000_000, 0)
	l.fail(netip.MustParseAddrPort("[2001:db8:1:2::1]:5060"), false, now)
	l.fail(netip.MustParseAddrPort("[2001:db8:1:2:ffff::9]:5062"), false, now)
	if b, _ := l.blocked(netip.MustParseAddrPort("[2001:db8:1:2::77]:5060"), false, now); !b {
		t.Fatal("two addresses of one /64 are one source")
	}
	if b, _ := l.blocked(netip.MustParseAddrPort("[2001:db8:1:3::1]:5060"), false, now); b {
		t.Fatal("another /64 is blocked")
	}
	if b, _ := l.blocked(netip.MustParseAddrPort("[2001:db8:1:2::1]:5060"), true, now); b {
		t.Fatal("UDP failures block TCP")
	}
	// IPv4 is counted per address, mapped or not.
	l.fail(netip.MustParseAddrPort("[::ffff:192.0.2.1]:5060"), false, now)
	l.fail(netip.MustParseAddrPort("192.0.2.1:5070"), false, now)
	if b, _ := l.blocked(netip.MustParseAddrPort("192.0.2.1:5060"), false, now); !b {
		t.Fatal("mapped and plain IPv4 differ")
	}
	if b, _ := l.blocked(netip.MustParseAddrPort("192.0.2.2:5060"), false, now); b {
		t.Fatal("a neighbour IPv4 is blocked")
	}
}

// authAttempt sends an INVITE, answers its 401 with user/pass and returns
// the final status of the authenticated INVITE.
func authAttempt(t *testing.T, p *rawPeer, id, pass string) string {
	t.Helper()
	p.send(p.rawRequest("INVITE", "", id+"a", nil, []string{"Content-Type: application/sdp"}, testOffer))
	res := p.final(id+"a", 5*time.Second)
	if !strings.HasPrefix(res, "SIP/2.0 401 ") {
		return res[:strings.Index(res, "\r\n")]
	}
	ch, err := digest.ParseChallenge(headerOf(res, "WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	ruri := fmt.Sprintf("sip:1000@%s:%d", p.host, p.port)
	cred, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: ruri, Username: "pbx", Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.rawRequest("INVITE", ruri, id+"b", nil, []string{"Content-Type: application/sdp", "Authorization: " + cred.String()}, testOffer))
	res = p.final(id+"b", 5*time.Second)
	return res[:strings.Index(res, "\r\n")]
}

// TestForgedAuthFailuresDoNotLockOutPBX: wrong passwords sent over UDP
// with the PBX's address (a forger needs no more than that) do not keep
// the PBX out: not when the PBX's address is on the trunk's allowlist,
// and never over TCP.
func TestForgedAuthFailuresDoNotLockOutPBX(t *testing.T) {
	for _, allowlisted := range []bool{true, false} {
		t.Run(fmt.Sprintf("allowlisted=%v", allowlisted), func(t *testing.T) {
			s := newTestServer(t, func(c *Config) {
				tr := TrunkConfig{Name: "pbx", Username: "pbx", Password: "right", Realm: "tgsip.test"}
				if allowlisted {
					tr.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
				c.Trunks = []TrunkConfig{tr}
				c.AuthLimit = AuthLimitConfig{Failures: 3, Window: time.Minute}
			})
			var admitted atomic.Int32
			calls(s, func(c *InboundCall) {
				admitted.Add(1)
				c.Reject(603, "test")
			})
			start(t, s)
			forger := newRawPeer(t, s, UDP)
			for i := 0; i < 6; i++ {
				got := authAttempt(t, forger, fmt.Sprintf("forged%d", i), "wrong")
				if allowlisted && got != "SIP/2.0 401 Unauthorized" {
					t.Fatalf("forged attempt %d on an allowlisted source: %s", i, got)
				}
			}
			if !allowlisted {
				// Over UDP the PBX cannot be told from the forger …
				if got := authAttempt(t, newRawPeer(t, s, UDP), "pbx-udp", "right"); got != "SIP/2.0 403 Forbidden" {
					t.Fatalf("UDP after the limit: %s", got)
				}
			} else if got := authAttempt(t, newRawPeer(t, s, UDP), "pbx-udp", "right"); got != "SIP/2.0 603 Decline" {
				t.Fatalf("the real PBX over UDP: %s", got)
			}
			// … but over TCP it can.
			if got := authAttempt(t, newRawPeer(t, s, TCP), "pbx-tcp", "right"); got != "SIP/2.0 603 Decline" {
				t.Fatalf("the real PBX over TCP: %s", got)
			}
			waitNoCalls(t, s)
			want := int32(1)
			if allowlisted {
				want = 2
			}
			if n := admitted.Load(); n != want {
				t.Fatalf("%d calls admitted, want %d", n, want)
			}
			if st := s.Stats(); st.AuthFailures.Load() < 3 {
				t.Fatalf("failures not counted: %d", st.AuthFailures.Load())
			}
		})
	}
}
