package sip

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// trustVerdict is what the trunk's trust rules decided for one request.
type trustVerdict struct {
	// Trunk is set when the request is allowed.
	Trunk *TrunkConfig
	// Status is 0 when allowed, else 401, 407 or 403.
	Status int
	// Challenges are WWW-Authenticate/Proxy-Authenticate headers for 401/407.
	Challenges []sip.Header
	// Why is a log-safe explanation (never carries secrets).
	Why string
}

// TrustStats counts trust decisions; the fields are read with atomic loads.
type TrustStats struct {
	Forbidden    atomic.Uint64 // 403 answers of any kind
	UnknownPeer  atomic.Uint64 // source matched no trunk
	AuthFailures atomic.Uint64 // bad or unknown credentials
	Throttled    atomic.Uint64 // refused by the failed-auth limit
	Blocks       atomic.Uint64 // times a source reached the limit (each block is longer)
	Challenges   atomic.Uint64 // 401/407 sent
	Replays      atomic.Uint64 // right password, but a nonce count used before
}

// gatekeeper applies the per-trunk IP allowlist and digest rules.
type gatekeeper struct {
	trunks []TrunkConfig
	nonces *nonceSigner
	counts *nonceCounter
	limit  AuthLimitConfig
	now    func() time.Time
	stats  *TrustStats

	limiter *authLimiter
}

func newGatekeeper(cfg Config, stats *TrustStats) *gatekeeper {
	return &gatekeeper{
		trunks:  cfg.Trunks,
		nonces:  newNonceSigner(cfg.AuthLimit.NonceTTL),
		counts:  newNonceCounter(cfg.AuthLimit.NonceTTL, maxTrackedNonces),
		limit:   cfg.AuthLimit,
		now:     time.Now,
		stats:   stats,
		limiter: newAuthLimiter(cfg.AuthLimit),
	}
}

// fail counts a failed authentication of src.
func (g *gatekeeper) fail(src netip.AddrPort, stream bool) {
	g.stats.AuthFailures.Add(1)
	if g.limiter.fail(src, stream, g.now()) {
		g.stats.Blocks.Add(1)
	}
}

func (g *gatekeeper) forbid(why string) trustVerdict {
	g.stats.Forbidden.Add(1)
	return trustVerdict{Status: 403, Why: why}
}

// check decides whether req from src (over UDP) may open a dialog.
func (g *gatekeeper) check(req *sip.Request, src netip.Addr) trustVerdict {
	return g.checkFrom(req, netip.AddrPortFrom(src, 0), UDP)
}

// checkFrom decides whether req, from src over tp, may open a dialog.
func (g *gatekeeper) checkFrom(req *sip.Request, from netip.AddrPort, tp Transport) trustVerdict {
	src := from.Addr().Unmap()
	from = netip.AddrPortFrom(src, from.Port())
	stream := tp == TCP || tp == TLS
	var candidates []*TrunkConfig
	allowlisted := false
	for i := range g.trunks {
		t := &g.trunks[i]
		if len(t.Allow) == 0 || containsAddr(t.Allow, src) {
			candidates = append(candidates, t)
			allowlisted = allowlisted || len(t.Allow) > 0
		}
	}
	if len(candidates) == 0 {
		g.stats.UnknownPeer.Add(1)
		return g.forbid("source matches no trunk")
	}
	for _, t := range candidates {
		if t.Username == "" {
			return trustVerdict{Trunk: t, Why: "ip allowlist"}
		}
	}
	// Every matching trunk wants digest authentication. The failed-attempt
	// limit (authlimit.go) spares UDP sources on a trunk's allowlist: a
	// block there would let forged datagrams lock out the real PBX.
	if stream || !allowlisted {
		if blocked, _ := g.limiter.blocked(from, stream, g.now()); blocked {
			g.stats.Throttled.Add(1)
			return g.forbid("too many failed authentications")
		}
	}
	fail := func() { g.fail(from, stream) }
	hdr := req.GetHeader("Authorization")
	if hdr == nil {
		hdr = req.GetHeader("Proxy-Authorization")
	}
	if hdr == nil {
		return g.challenge(candidates[0], false, "no credentials")
	}
	cred, err := parseDigestCredentials(hdr.Value())
	if err != nil {
		fail()
		return g.challenge(candidates[0], false, "unparsable credentials")
	}
	var trunk *TrunkConfig
	for _, t := range candidates {
		if t.Username == cred.Username && t.Realm == cred.Realm {
			trunk = t
			break
		}
	}
	if trunk == nil {
		fail()
		return g.challenge(candidates[0], false, "unknown username or realm")
	}
	issued, valid, stale := g.nonces.check(cred.Nonce)
	if !valid {
		fail()
		return g.challenge(trunk, false, "nonce not issued by us")
	}
	if !algorithmAllowed(trunk, cred.Algorithm) || !verifyDigest(cred, string(req.Method), trunk.Password) {
		fail()
		return g.challenge(trunk, false, "wrong digest response")
	}
	if stale {
		// Right password, old nonce: RFC 7616 §3.3 stale=true lets the
		// client retry without asking anybody for the password.
		return g.challenge(trunk, true, "stale nonce")
	}
	if !g.counts.use(cred.Nonce, issued, cred.count(), g.now()) {
		// RFC 7616 §3.4: a nonce count seen before is a replay. It is
		// not counted as an authentication failure: a replay sent from
		// the real peer's (spoofed) address must not get it throttled.
		// stale=true lets a client that merely miscounted retry with
		// the fresh nonce without asking anyone for the password.
		g.stats.Replays.Add(1)
		return g.challenge(trunk, true, "nonce count replayed")
	}
	g.limiter.succeed(from, stream, g.now())
	return trustVerdict{Trunk: trunk, Why: "digest"}
}

func algorithmAllowed(t *TrunkConfig, alg string) bool {
	_, a, ok := hashFor(alg)
	if !ok {
		return false
	}
	for _, x := range t.Algorithms {
		if x == a {
			return true
		}
	}
	return false
}

// challenge builds a 401/407 with one challenge per algorithm, preferred
// first (RFC 8760 §2.4), all sharing one fresh nonce.
func (g *gatekeeper) challenge(t *TrunkConfig, stale bool, why string) trustVerdict {
	g.stats.Challenges.Add(1)
	name, status := "WWW-Authenticate", 401
	if t.ProxyAuth {
		name, status = "Proxy-Authenticate", 407
	}
	nonce := g.nonces.issue()
	v := trustVerdict{Status: status, Why: why}
	for _, alg := range t.Algorithms {
		v.Challenges = append(v.Challenges, sip.NewHeader(name, challenge(t.Realm, nonce, alg, stale)))
	}
	return v
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
