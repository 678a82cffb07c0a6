package sip

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func inviteFrom(auth string) *sip.Request {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1000", Host: "127.0.0.1"})
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	return req
}

// answer computes credentials for the first challenge of v.
func answer(t *testing.T, v trustVerdict, user, pass string) string {
	t.Helper()
	if len(v.Challenges) == 0 {
		t.Fatalf("no challenge in %+v", v)
	}
	ch, err := digest.ParseChallenge(v.Challenges[0].Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: "sip:1000@127.0.0.1", Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func TestGatekeeper(t *testing.T) {
	cfg := Config{
		Domain: "tgsip.test",
		Trunks: []TrunkConfig{
			{Name: "office", Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "cloud", Username: "pbx", Password: "pw", Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			{Name: "roaming", Username: "road", Password: "warrior"},
		},
		AuthLimit: AuthLimitConfig{Failures: 3, Window: time.Minute, NonceTTL: time.Minute},
	}.withDefaults()
	var st TrustStats
	g := newGatekeeper(cfg, &st)
	now := time.Unix(1_800_000_000, 0)
	g.now = func() time.Time { return now }
	g.nonces.now = g.now

	office := netip.MustParseAddr("10.1.2.3")
	if v := g.check(inviteFrom(""), office); v.Status != 0 || v.Trunk.Name != "office" {
		t.Fatalf("office by IP: %+v", v)
	}
	cloud := netip.MustParseAddr("192.0.2.7")
	v := g.check(inviteFrom(""), cloud)
	if v.Status != 401 || len(v.Challenges) != 2 || !strings.Contains(v.Challenges[0].Value(), "SHA-256") {
		t.Fatalf("cloud challenge: %+v", v)
	}
	if v2 := g.check(inviteFrom(answer(t, v, "pbx", "pw")), cloud); v2.Status != 0 || v2.Trunk.Name != "cloud" {
		t.Fatalf("cloud with right password: %+v", v2)
	}
	// The cloud credentials from an address outside its allowlist match
	// only the roaming trunk, whose username differs.
	other := netip.MustParseAddr("203.0.113.9")
	v = g.check(inviteFrom(""), other)
	if v2 := g.check(inviteFrom(answer(t, v, "pbx", "pw")), other); v2.Status != 401 {
		t.Fatalf("cloud credentials from elsewhere: %+v", v2)
	}
	// Stale nonce with the right password: challenge again, stale=true.
	v = g.check(inviteFrom(""), other)
	creds := answer(t, v, "road", "warrior")
	now = now.Add(2 * time.Minute)
	if v2 := g.check(inviteFrom(creds), other); v2.Status != 401 || !strings.Contains(v2.Challenges[0].Value(), "stale=true") {
		t.Fatalf("stale nonce: %+v", v2)
	}
	// Wrong passwords: the limit is 3 failures per window (the failure
	// above is in an expired window), then 403 without a challenge.
	for i := 0; i < 3; i++ {
		v = g.check(inviteFrom(""), other)
		if v2 := g.check(inviteFrom(answer(t, v, "road", "nope")), other); v2.Status != 401 {
			t.Fatalf("wrong password %d: %+v", i, v2)
		}
	}
	if v2 := g.check(inviteFrom(""), other); v2.Status != 403 || len(v2.Challenges) != 0 {
		t.Fatalf("after the limit: %+v", v2)
	}
	// Other sources are not affected; the window expires.
	if v2 := g.check(inviteFrom(""), office); v2.Status != 0 {
		t.Fatalf("office after someone else's failures: %+v", v2)
	}
	now = now.Add(2 * time.Minute)
	if v2 := g.check(inviteFrom(""), other); v2.Status != 401 {
		t.Fatalf("after the window: %+v", v2)
	}
	if st.AuthFailures.Load() != 4 || st.Throttled.Load() != 1 {
		t.Errorf("stats failures=%d throttled=%d", st.AuthFailures.Load(), st.Throttled.Load())
	}
}

// credentials builds an Authorization value for nonce with an explicit
// nonce count (qop "" leaves nc and cnonce out, RFC 2069 style).
func credentials(nonce, qop, nc string) string {
	const user, realm, pass, uri = "road", "tgsip.test", "warrior", "sip:1000@127.0.0.1"
	resp := digestResponse(digestInput{
		Algorithm: SHA256, Username: user, Realm: realm, Password: pass,
		Method: "INVITE", URI: uri, Nonce: nonce, NC: nc, Cnonce: "c0ffee", QOP: qop,
	})
	h := `Digest username="` + user + `", realm="` + realm + `", uri="` + uri + `", algorithm=SHA-256, nonce="` + nonce + `", response="` + resp + `"`
	if qop != "" {
		h += `, qop=` + qop + `, nc=` + nc + `, cnonce="c0ffee"`
	}
	return h
}

func TestGatekeeperNonceCountReplay(t *testing.T) {
	type try struct {
		qop, nc string
		status  int
		stale   bool
	}
	for _, tc := range []struct {
		name  string
		tries []try
	}{
		{"counting up", []try{{"auth", "00000001", 0, false}, {"auth", "00000002", 0, false}, {"auth", "00000003", 0, false}}},
		{"same nc replayed", []try{{"auth", "00000001", 0, false}, {"auth", "00000001", 401, true}}},
		{"lower nc", []try{{"auth", "00000005", 0, false}, {"auth", "00000004", 401, true}, {"auth", "00000006", 0, false}}},
		{"no qop: one use", []try{{"", "", 0, false}, {"", "", 401, true}}},
		{"qop after a no-qop use", []try{{"", "", 0, false}, {"auth", "00000001", 401, true}, {"auth", "00000002", 0, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Domain:    "tgsip.test",
				Trunks:    []TrunkConfig{{Name: "roaming", Username: "road", Password: "warrior"}},
				AuthLimit: AuthLimitConfig{Failures: 1, Window: time.Minute, NonceTTL: time.Minute},
			}.withDefaults()
			var st TrustStats
			g := newGatekeeper(cfg, &st)
			src := netip.MustParseAddr("198.51.100.1")
			nonce := g.nonces.issue()
			replays := 0
			for i, tr := range tc.tries {
				v := g.check(inviteFrom(credentials(nonce, tr.qop, tr.nc)), src)
				if v.Status != tr.status {
					t.Fatalf("try %d (qop=%q nc=%s): status %d (%s), want %d", i, tr.qop, tr.nc, v.Status, v.Why, tr.status)
				}
				if tr.status == 0 {
					continue
				}
				replays++
				// A fresh challenge: a new nonce, stale=true so the
				// client retries without asking for the password.
				if len(v.Challenges) == 0 || !strings.Contains(v.Challenges[0].Value(), "stale=true") ||
					strings.Contains(v.Challenges[0].Value(), nonce) {
					t.Fatalf("try %d: challenge %v", i, v.Challenges)
				}
			}
			if st.Replays.Load() != uint64(replays) {
				t.Errorf("replays counted %d, want %d", st.Replays.Load(), replays)
			}
			// Replays are not password failures: with a limit of one
			// failure the source would otherwise be throttled now.
			if st.AuthFailures.Load() != 0 || st.Throttled.Load() != 0 {
				t.Errorf("failures=%d throttled=%d", st.AuthFailures.Load(), st.Throttled.Load())
			}
		})
	}
}

func TestGatekeeperUnknownAndProxyAuth(t *testing.T) {
	cfg := Config{Trunks: []TrunkConfig{{Name: "p", Username: "u", Password: "p", ProxyAuth: true, Algorithms: []DigestAlgorithm{MD5}}}}.withDefaults()
	var st TrustStats
	g := newGatekeeper(cfg, &st)
	v := g.check(inviteFrom(""), netip.MustParseAddr("127.0.0.1"))
	if v.Status != 407 || len(v.Challenges) != 1 || v.Challenges[0].Name() != "Proxy-Authenticate" {
		t.Fatalf("%+v", v)
	}
	g2 := newGatekeeper(Config{Trunks: []TrunkConfig{{Name: "x", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}}.withDefaults(), &st)
	if v := g2.check(inviteFrom(""), netip.MustParseAddr("127.0.0.1")); v.Status != 403 {
		t.Fatalf("%+v", v)
	}
	if st.UnknownPeer.Load() != 1 {
		t.Error("unknown peer not counted")
	}
}

func TestPortPool(t *testing.T) {
	r := nextRTPRange()
	r.Max = r.Min + 5 // three pairs
	p, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), r)
	if err != nil {
		t.Fatal(err)
	}
	var got []*RTPPort
	for i := 0; i < 3; i++ {
		port, err := p.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if port.Port()%2 != 0 || port.RTCP.LocalAddr().(interface{ String() string }) == nil {
			t.Fatalf("odd RTP port %d", port.Port())
		}
		got = append(got, port)
	}
	if _, err := p.Allocate(); err != ErrNoPorts {
		t.Fatalf("fourth allocation: %v", err)
	}
	got[1].Release()
	got[1].Release() // twice is fine
	again, err := p.Allocate()
	if err != nil || again.Port() != got[1].Port() {
		t.Fatalf("reuse: %v %v", again, err)
	}
	for _, x := range append(got, again) {
		x.Release()
	}
	if p.InUse() != 0 {
		t.Fatal("ports leaked")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := Config{
		Listen:   []ListenConfig{{Transport: "sctp"}, {Transport: TLS, Addr: netip.MustParseAddrPort("127.0.0.1:5061")}},
		RTPPorts: PortRange{Min: 10, Max: 10},
		Trunks:   []TrunkConfig{{Name: "open"}, {Name: "nopw", Username: "u"}},
	}
	err := bad.withDefaults().Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"sctp", "cert_file", "rtp_ports", `"open"`, "without password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
