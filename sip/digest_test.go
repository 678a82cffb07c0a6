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
	if v, s := n.check(nonce); !v || s {
		t.Fatalf("fresh nonce: valid=%v stale=%v", v, s)
	}
	now = now.Add(2 * time.Minute)
	if v, s := n.check(nonce); !v || !s {
		t.Fatalf("old nonce: valid=%v stale=%v", v, s)
	}
	other := newNonceSigner(time.Minute)
	if v, _ := other.check(nonce); v {
		t.Fatal("nonce of another key accepted")
	}
	if v, _ := n.check(nonce[:len(nonce)-2] + "AA"); v {
		t.Fatal("tampered nonce accepted")
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
