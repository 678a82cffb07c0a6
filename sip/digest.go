package sip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// digestCredentials is a parsed Authorization / Proxy-Authorization value
// (RFC 3261 §25.1 credentials, RFC 7616 §3.4 parameters).
type digestCredentials struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string
	Cnonce    string
	Opaque    string
	QOP       string
	NC        string
}

var errNotDigest = errors.New("sip: authorization is not Digest")

// maxAuthHeader bounds what we are willing to parse from the network.
const maxAuthHeader = 4096

// parseDigestCredentials parses `Digest k=v, k="v", ...`. Unknown parameters
// are ignored; a parameter given twice is an error because a naive reader
// and a strict one could otherwise disagree about which one counts.
func parseDigestCredentials(s string) (digestCredentials, error) {
	var c digestCredentials
	if len(s) > maxAuthHeader {
		return c, errors.New("sip: authorization header too long")
	}
	s = strings.TrimSpace(s)
	scheme, rest, _ := strings.Cut(s, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return c, errNotDigest
	}
	seen := map[string]bool{}
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return c, errors.New("sip: digest parameter without value")
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			closed := false
			for ; i < len(rest); i++ {
				ch := rest[i]
				if ch == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if ch == '"' {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return c, errors.New("sip: unterminated quoted string in digest")
			}
			val = b.String()
			rest = rest[i+1:]
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			val = rest[:end]
			rest = rest[end:]
		}
		if seen[key] {
			return c, errors.New("sip: duplicate digest parameter " + key)
		}
		seen[key] = true
		switch key {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = strings.ToLower(val)
		case "algorithm":
			c.Algorithm = val
		case "cnonce":
			c.Cnonce = val
		case "opaque":
			c.Opaque = val
		case "qop":
			c.QOP = val
		case "nc":
			c.NC = val
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return c, errors.New("sip: digest credentials miss username, nonce, uri or response")
	}
	if c.QOP != "" && (c.Cnonce == "" || c.NC == "") {
		return c, errors.New("sip: digest qop without cnonce or nc")
	}
	if c.QOP != "" {
		// RFC 7616 §3.4: nc is 8LHEX. Fewer digits are tolerated; the
		// value is hashed as sent, so leniency costs nothing.
		if len(c.NC) > 8 {
			return c, errors.New("sip: digest nc longer than 8 hex digits")
		}
		if _, err := strconv.ParseUint(c.NC, 16, 32); err != nil {
			return c, errors.New("sip: digest nc is not hexadecimal")
		}
	}
	return c, nil
}

// count is the nonce count of the credentials for replay detection. With
// qop the client counts its uses of the nonce in nc (RFC 7616 §3.4).
// Without qop (RFC 2069 style) there is no counter, so such a nonce is
// good for one request: its count is always 1.
func (c digestCredentials) count() uint32 {
	if c.QOP == "" {
		return 1
	}
	n, _ := strconv.ParseUint(c.NC, 16, 32) // validated by parseDigestCredentials
	return uint32(n)
}

// hashFor returns the hash of an RFC 8760 algorithm name; "" means MD5
// (RFC 2617 default).
func hashFor(alg string) (func() hash.Hash, DigestAlgorithm, bool) {
	switch strings.ToUpper(alg) {
	case "", "MD5":
		return md5.New, MD5, true
	case "SHA-256":
		return sha256.New, SHA256, true
	}
	return nil, "", false
}

func hexHash(h func() hash.Hash, parts ...string) string {
	d := h()
	for i, p := range parts {
		if i > 0 {
			d.Write([]byte{':'})
		}
		d.Write([]byte(p))
	}
	return hex.EncodeToString(d.Sum(nil))
}

// digestInput is what the response is computed over.
type digestInput struct {
	Algorithm DigestAlgorithm
	Username  string
	Realm     string
	Password  string
	Method    string
	URI       string
	Nonce     string
	NC        string
	Cnonce    string
	QOP       string
}

// digestResponse computes request-digest (RFC 7616 §3.4.1, qop=auth or no
// qop as in RFC 2617 §3.2.2.1). auth-int is not offered, so not computed.
func digestResponse(in digestInput) string {
	h, _, ok := hashFor(string(in.Algorithm))
	if !ok {
		return ""
	}
	ha1 := hexHash(h, in.Username, in.Realm, in.Password)
	ha2 := hexHash(h, in.Method, in.URI)
	if in.QOP == "" {
		return hexHash(h, ha1, in.Nonce, ha2)
	}
	return hexHash(h, ha1, in.Nonce, in.NC, in.Cnonce, in.QOP, ha2)
}

// nonceSigner issues stateless nonces: issue time and randomness signed with
// a per-process HMAC key, so a nonce can be checked for origin and age
// without a table. Replays within a nonce's lifetime are caught by
// nonceCounter.
type nonceSigner struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

func newNonceSigner(ttl time.Duration) *nonceSigner {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("sip: crypto/rand failed: " + err.Error()) // the OS RNG does not fail on Linux
	}
	return &nonceSigner{key: key, ttl: ttl, now: time.Now}
}

const nonceMACLen = 16

func (n *nonceSigner) issue() string {
	var b [8 + 8 + nonceMACLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.now().UnixNano()))
	_, _ = rand.Read(b[8:16]) // crypto/rand.Read never returns an error on supported platforms
	copy(b[16:], n.mac(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *nonceSigner) mac(b []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write(b)
	return m.Sum(nil)[:nonceMACLen]
}

// check reports whether nonce is ours, when it was issued, and whether it
// has expired (RFC 3261 §22.4 / RFC 7616 §3.3: answer a well-formed but old
// nonce with stale=true).
func (n *nonceSigner) check(nonce string) (issued time.Time, valid, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 16+nonceMACLen {
		return time.Time{}, false, false
	}
	if !hmac.Equal(b[16:], n.mac(b[:16])) {
		return time.Time{}, false, false
	}
	issued = time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := n.now().Sub(issued)
	if age < 0 || age > n.ttl {
		return issued, true, true
	}
	return issued, true, false
}

// maxTrackedNonces bounds the nonce-count table. Only requests with the
// right password add entries, so it fills with real traffic only: 65536
// nonces within one nonce lifetime (5 min by default) is over 200 new
// authenticated dialogs a second.
const maxTrackedNonces = 1 << 16

// nonceCounter remembers, for each nonce still within its lifetime, the
// highest nonce count a request has authenticated with. RFC 7616 §3.4:
// seeing the same nc twice means the request is a replay; RFC 8760 keeps
// that rule for SIP. A count must therefore grow with every use; a reused
// or lower one is refused, and the caller answers with a fresh challenge.
type nonceCounter struct {
	ttl   time.Duration
	limit int

	mu   sync.Mutex
	seen map[string]nonceUse
	// floor is the issue time of the newest nonce forgotten to make
	// room: a nonce issued at or before it may have been used already,
	// so it is refused as if replayed. Expired entries are dropped
	// without raising it, because the signer refuses those nonces anyway.
	floor time.Time
}

type nonceUse struct {
	nc     uint32
	issued time.Time
}

func newNonceCounter(ttl time.Duration, limit int) *nonceCounter {
	return &nonceCounter{ttl: ttl, limit: limit, seen: map[string]nonceUse{}}
}

// use records that nonce, issued at issued, authenticated a request with
// count nc. It reports false for a replay: nc not above the highest count
// seen with this nonce, or a nonce too old to be told apart from one.
func (c *nonceCounter) use(nonce string, issued time.Time, nc uint32, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !issued.After(c.floor) {
		return false
	}
	if u, ok := c.seen[nonce]; ok {
		if nc <= u.nc {
			return false
		}
		u.nc = nc
		c.seen[nonce] = u
		return true
	}
	if len(c.seen) >= c.limit {
		c.makeRoom(now)
		if !issued.After(c.floor) {
			return false
		}
	}
	c.seen[nonce] = nonceUse{nc: nc, issued: issued}
	return true
}

// makeRoom drops expired entries, and if that is not enough, the oldest
// quarter of the table, raising floor past them.
func (c *nonceCounter) makeRoom(now time.Time) {
	for k, u := range c.seen {
		if now.Sub(u.issued) > c.ttl {
			delete(c.seen, k)
		}
	}
	if len(c.seen) < c.limit {
		return
	}
	times := make([]time.Time, 0, len(c.seen))
	for _, u := range c.seen {
		times = append(times, u.issued)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[max(len(times)/4, 1)-1]
	if cut.After(c.floor) {
		c.floor = cut
	}
	for k, u := range c.seen {
		if !u.issued.After(c.floor) {
			delete(c.seen, k)
		}
	}
}

// len is the number of nonces tracked.
func (c *nonceCounter) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// challenge formats one WWW-Authenticate / Proxy-Authenticate value.
func challenge(realm, nonce string, alg DigestAlgorithm, stale bool) string {
	var b strings.Builder
	b.WriteString(`Digest realm="`)
	b.WriteString(quoteEscape(realm))
	b.WriteString(`", nonce="`)
	b.WriteString(nonce)
	b.WriteString(`", algorithm=`)
	b.WriteString(string(alg))
	b.WriteString(`, qop="auth"`)
	if stale {
		b.WriteString(`, stale=true`)
	}
	return b.String()
}

func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// verifyDigest checks c against the password in constant time.
func verifyDigest(c digestCredentials, method, password string) bool {
	_, alg, ok := hashFor(c.Algorithm)
	if !ok {
		return false
	}
	if c.QOP != "" && c.QOP != "auth" {
		return false
	}
	want := digestResponse(digestInput{
		Algorithm: alg, Username: c.Username, Realm: c.Realm, Password: password,
		Method: method, URI: c.URI, Nonce: c.Nonce, NC: c.NC, Cnonce: c.Cnonce, QOP: c.QOP,
	})
	return subtle.ConstantTimeCompare([]byte(want), []byte(c.Response)) == 1
}
