package sip

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

type rfcDigestCase struct {
	Algorithm, Username, Password, Realm, Method, URI string
	Nonce, NC, Cnonce, QOP, Response                  string
}

func loadRFC7616(t *testing.T) []rfcDigestCase {
	t.Helper()
	b, err := os.ReadFile("testdata/digest-rfc7616-3.9.1.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []rfcDigestCase }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("no cases")
	}
	return f.Cases
}

func TestDigestResponseRFC7616(t *testing.T) {
	for _, c := range loadRFC7616(t) {
		t.Run(c.Algorithm, func(t *testing.T) {
			got := digestResponse(digestInput{
				Algorithm: DigestAlgorithm(c.Algorithm), Username: c.Username, Realm: c.Realm,
				Password: c.Password, Method: c.Method, URI: c.URI, Nonce: c.Nonce,
				NC: c.NC, Cnonce: c.Cnonce, QOP: c.QOP,
			})
			if got != c.Response {
				t.Fatalf("response = %s, want %s", got, c.Response)
			}
			hdr := `Digest username="` + c.Username + `", realm="` + c.Realm + `", uri="` + c.URI +
				`", algorithm=` + c.Algorithm + `, nonce="` + c.Nonce + `", nc=` + c.NC +
				`, cnonce="` + c.Cnonce + `", qop=auth, response="` + strings.ToUpper(c.Response) + `", opaque="x"`
			cred, err := parseDigestCredentials(hdr)
			if err != nil {
				t.Fatal(err)
			}
			if !verifyDigest(cred, c.Method, c.Password) {
				t.Fatal("verifyDigest rejected the RFC example")
			}
			if verifyDigest(cred, c.Method, c.Password+"x") {
				t.Fatal("verifyDigest accepted a wrong password")
			}
		})
	}
}

// The client library sipgo uses must agree with our server math, or our own
// outbound calls could not authenticate against a peer running this code.
func TestDigestAgreesWithClientLibrary(t *testing.T) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		chal := &digest.Challenge{Realm: "tgsip", Nonce: "abc", Algorithm: alg, QOP: []string{"auth"}}
		cred, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: "sip:123@127.0.0.1", Username: "u", Password: "p"})
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parseDigestCredentials(cred.String())
		if err != nil {
			t.Fatalf("%s: %v (%s)", alg, err, cred.String())
		}
		if !verifyDigest(parsed, "INVITE", "p") {
			t.Fatalf("%s: client credentials rejected: %s", alg, cred.String())
		}
	}
}

func TestParseDigestCredentials(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="00"`, true},
		{`digest username=a,realm=r,nonce=n,uri=sip:x,response=00`, true},
		{`Digest username="a\"b", realm="r", nonce="n", uri="sip:x", response="00"`, true},
		{`Basic dXNlcjpwYXNz`, false},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x"`, false},
		{`Digest username="a, realm="r"`, false},
		{`Digest username="a", username="b", nonce="n", uri="sip:x", response="00"`, false},
		{`Digest username="a", nonce="n", uri="sip:x", response="00", qop=auth`, false},
		{`Digest username="a", nonce="n", uri="sip:x", response="00", qop=auth, cnonce="c", nc=00000001`, true},
		{`Digest username="a", nonce="n", uri="sip:x", response="00", qop=auth, cnonce="c", nc=1f`, true},
		{`Digest username="a", nonce="n", uri="sip:x", response="00", qop=auth, cnonce="c", nc=000000001`, false},
		{`Digest username="a", nonce="n", uri="sip:x", response="00", qop=auth, cnonce="c", nc=0000000g`, false},
		{`Digest =x`, false},
		{``, false},
	}
	for _, tt := range tests {
		_, err := parseDigestCredentials(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestNonceExpiry(t *testing.T) {
	n := newNonceSigner(time.Minute)
	now := time.Unix(1_700_000_000, 0)
	n.now = func() time.Time { return now }
	nonce := n.issue()
	if at, v, s := n.check(nonce); !v || s || !at.Equal(now) {
		t.Fatalf("fresh nonce: valid=%v stale=%v issued=%v", v, s, at)
	}
	now = now.Add(2 * time.Minute)
	if _, v, s := n.check(nonce); !v || !s {
		t.Fatalf("old nonce: valid=%v stale=%v", v, s)
	}
	other := newNonceSigner(time.Minute)
	if _, v, _ := other.check(nonce); v {
		t.Fatal("nonce of another key accepted")
	}
	if _, v, _ := n.check(nonce[:len(nonce)-2] + "AA"); v {
		t.Fatal("tampered nonce accepted")
	}
}

func TestNonceCounter(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		nonce  string
		issued int // seconds after t0
		nc     uint32
		now    int
		ok     bool
	}
	for _, tc := range []struct {
		name  string
		limit int
		steps []step
	}{
		{"first use", 8, []step{{"a", 0, 1, 0, true}}},
		{"same nc twice", 8, []step{{"a", 0, 1, 0, true}, {"a", 0, 1, 1, false}}},
		{"increasing", 8, []step{{"a", 0, 1, 0, true}, {"a", 0, 2, 1, true}, {"a", 0, 3, 2, true}}},
		{"gaps are fine", 8, []step{{"a", 0, 1, 0, true}, {"a", 0, 9, 1, true}}},
		{"lower refused", 8, []step{{"a", 0, 5, 0, true}, {"a", 0, 4, 1, false}, {"a", 0, 6, 2, true}}},
		{"refusal does not lower the mark", 8, []step{{"a", 0, 5, 0, true}, {"a", 0, 2, 1, false}, {"a", 0, 3, 2, false}}},
		{"nonces counted apart", 8, []step{{"a", 0, 1, 0, true}, {"b", 0, 1, 0, true}, {"b", 0, 1, 0, false}, {"a", 0, 2, 0, true}}},
		{"first count may be high", 8, []step{{"a", 0, 0xffffffff, 0, true}, {"a", 0, 0xffffffff, 0, false}}},
		{"full: expired entries make room", 2, []step{
			{"a", 0, 1, 0, true}, {"b", 1, 1, 1, true},
			{"c", 100, 1, 100, true}, // a and b are past the 60 s lifetime
			{"d", 101, 1, 101, true},
		}},
		{"full: oldest forgotten and then refused", 4, []step{
			{"a", 0, 1, 0, true}, {"b", 1, 1, 1, true}, {"c", 2, 1, 2, true}, {"d", 3, 1, 3, true},
			{"e", 4, 1, 4, true},  // a is forgotten: floor is its issue time
			{"a", 0, 2, 5, false}, // even with a higher count: it might be a replay
			{"b", 1, 2, 5, true},  // newer nonces keep their counts
			{"b", 1, 2, 5, false},
			{"e", 4, 1, 5, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newNonceCounter(time.Minute, tc.limit)
			for i, st := range tc.steps {
				if got := c.use(st.nonce, at(st.issued), st.nc, at(st.now)); got != st.ok {
					t.Fatalf("step %d (%s nc=%d): use = %v, want %v", i, st.nonce, st.nc, got, st.ok)
				}
				if n := c.len(); n > tc.limit {
					t.Fatalf("step %d: %d nonces tracked, limit %d", i, n, tc.limit)
				}
			}
		})
	}
}

func TestDigestCount(t *testing.T) {
	for _, tc := range []struct {
		qop, nc string
		want    uint32
	}{
		{"auth", "00000001", 1},
		{"auth", "0000002a", 42},
		{"auth", "ffffffff", 0xffffffff},
		{"", "", 1},
		{"", "00000007", 1}, // nc without qop means nothing (RFC 2617 §3.2.2)
	} {
		if got := (digestCredentials{QOP: tc.qop, NC: tc.nc}).count(); got != tc.want {
			t.Errorf("qop=%q nc=%q: count %d, want %d", tc.qop, tc.nc, got, tc.want)
		}
	}
}

func FuzzParseDigestCredentials(f *testing.F) {
	f.Add(`Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf", nc=00000001, cnonce="f2/w", qop=auth, response="7539", opaque="FQhe"`)
	f.Add(`Digest username="a\\", realm=""`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseDigestCredentials(s)
		if err != nil {
			return
		}
		if c.Username == "" || c.Nonce == "" {
			t.Fatal("accepted credentials without username or nonce")
		}
		_ = verifyDigest(c, "INVITE", "secret") // must not panic
	})
}
