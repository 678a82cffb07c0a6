package media

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // sha-1 fingerprints are legal in SDP (RFC 8122); we only verify them
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"time"
)

// Parameters are our ICE credentials and DTLS fingerprint, sent in the
// InitialSetup signaling message.
type Parameters struct {
	Ufrag, Pwd string
	// Fingerprint is the sha-256 fingerprint of our certificate, "AB:CD:…".
	Fingerprint string
	// Setup is the DTLS setup attribute: "actpass" before the remote
	// parameters are known on the caller, "passive"/"active" once the role
	// is fixed (the callee answers "passive": it is the DTLS server).
	Setup string
	// Renomination is what InitialSetup's renomination flag tells the
	// peer: our agent, when controlled, follows renomination
	// (draft-thatcher-ice-renomination-01: the NOMINATION attribute 0xC001,
	// libwebrtc's STUN_ATTR_NOMINATION, last nomination wins; pion/ice
	// v4.4.8 controlledSelector.HandleBindingRequest), so a tgcalls caller
	// may move the call to a better pair. tgcalls sets it from its own
	// PeerIceParameters.supportsRenomination. We never renominate when
	// controlling.
	Renomination bool
}

// FingerprintHash is the hash name of Parameters.Fingerprint.
const FingerprintHash = "sha-256"

// Fingerprint is one fingerprint of the remote InitialSetup.
type Fingerprint struct {
	Hash  string // "sha-256" (also sha-1, sha-384, sha-512)
	Setup string // "actpass", "active", "passive"
	Value string // "AB:CD:…"
}

// RemoteParameters are the peer's ICE credentials and DTLS fingerprints from
// its InitialSetup.
type RemoteParameters struct {
	Ufrag, Pwd   string
	Fingerprints []Fingerprint
}

// ErrFingerprint is returned (wrapped in ErrDTLS) when the peer's certificate
// matches none of its announced fingerprints.
var ErrFingerprint = errors.New("media: DTLS certificate does not match the signaled fingerprint")

// newCertificate creates the self-signed ECDSA P-256 certificate of one call
// (tgcalls generates one per call as well).
func newCertificate() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tgsip"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, formatFingerprint(sum[:]), nil
}

// formatFingerprint renders bytes as upper-case hex pairs separated by ':'.
func formatFingerprint(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, len(b)*3)
	for i, x := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

func hashByName(name string) (hash.Hash, bool) {
	switch strings.ToLower(name) {
	case "sha-256":
		return sha256.New(), true
	case "sha-1":
		return sha1.New(), true //nolint:gosec // see import
	case "sha-384":
		return sha512.New384(), true
	case "sha-512":
		return sha512.New(), true
	}
	return nil, false
}

// verifyFingerprint checks the peer's leaf certificate against the signaled
// fingerprints; one match is enough.
func verifyFingerprint(rawCerts [][]byte, fps []Fingerprint) error {
	if len(rawCerts) == 0 {
		return fmt.Errorf("%w: no certificate", ErrFingerprint)
	}
	for _, fp := range fps {
		h, ok := hashByName(fp.Hash)
		if !ok {
			continue
		}
		want, err := hex.DecodeString(strings.ReplaceAll(fp.Value, ":", ""))
		if err != nil {
			continue
		}
		h.Write(rawCerts[0])
		if subtle.ConstantTimeCompare(h.Sum(nil), want) == 1 {
			return nil
		}
	}
	return ErrFingerprint
}

// dtlsClientRole decides our DTLS role as tgcalls setRemoteParams does:
// remote "active" → we are server, remote "passive" → we are client,
// otherwise the caller is client and the callee server.
func dtlsClientRole(outgoing bool, fps []Fingerprint) bool {
	setup := ""
	if len(fps) > 0 {
		setup = strings.ToLower(fps[0].Setup)
	}
	switch setup {
	case "active":
		return false
	case "passive":
		return true
	}
	return outgoing
}
