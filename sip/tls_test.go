package sip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1.
func writeTestCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tgsip test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSCallByeFromTrunk runs a whole call over TLS with an in-process
// sipgo UAC; our BYE must come back over the caller's TLS connection.
func TestTLSCallByeFromTrunk(t *testing.T) {
	certFile, keyFile, pool := writeTestCert(t)
	s := newTestServer(t, func(c *Config) {
		c.Listen = append(c.Listen, ListenConfig{Transport: TLS, Addr: netip.MustParseAddrPort("127.0.0.1:0"), CertFile: certFile, KeyFile: keyFile})
	})
	got := calls(s, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
			return
		}
		select {
		case <-c.Confirmed():
			c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
		case <-c.Done():
		}
	})
	start(t, s)
	ap, _ := s.Addr(TLS)

	ua, err := sipgo.NewUA(sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	uas, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	byes := make(chan struct{}, 1)
	uas.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		byes <- struct{}{}
	})
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	dua := sipgo.DialogUA{Client: cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sips", User: "tls", Host: "127.0.0.1", Port: 5099}}}
	target := sip.Uri{Scheme: "sips", User: "1000", Host: "127.0.0.1", Port: int(ap.Port()), UriParams: sip.NewParams()}
	target.UriParams.Add("transport", "tls")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := dua.Invite(ctx, target, []byte(benchOffer), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, got, "call")
	if c.Transport != TLS {
		t.Errorf("transport = %v", c.Transport)
	}
	waitFor(t, byes, "BYE over TLS")
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}

// TestTLSOutboundVerifiesPBX: calls to a PBX over TLS verify its
// certificate; a self-signed one is trusted only when listed in
// outbound.tls.ca_file.
func TestTLSOutboundVerifiesPBX(t *testing.T) {
	certFile, keyFile, _ := writeTestCert(t)
	pbx := newTestServer(t, func(c *Config) {
		c.Listen = append(c.Listen, ListenConfig{Transport: TLS, Addr: netip.MustParseAddrPort("127.0.0.1:0"), CertFile: certFile, KeyFile: keyFile})
	})
	got := calls(pbx, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	start(t, pbx)
	ap, _ := pbx.Addr(TLS)
	uri := fmt.Sprintf("sip:127.0.0.1:%d;transport=tls", ap.Port())

	// Without the PBX's certificate the TLS handshake fails: no call.
	untrusting := newTestServer(t, func(c *Config) { c.Outbound.URI = uri })
	start(t, untrusting)
	if c, err := untrusting.Dial(context.Background(), DialRequest{To: "2000"}); err == nil {
		if ce := endOf(t, c); ce.Cause != CauseTransport {
			t.Errorf("call to an unverified PBX ended %v, want a transport error", ce)
		}
	}
	select {
	case in := <-got:
		t.Fatalf("the PBX got a call over an unverified connection: %v", in.CallID)
	default:
	}
	waitNoCalls(t, untrusting)

	trunk := newTestServer(t, func(c *Config) {
		c.Outbound.URI = uri
		c.Outbound.TLS.CAFile = certFile
	})
	start(t, trunk)
	c, err := trunk.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Answered(), "answer over TLS")
	in := waitFor(t, got, "call at the PBX")
	if in.Transport != TLS {
		t.Errorf("PBX got the call over %v", in.Transport)
	}
	c.Hangup(Reason{})
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, trunk)
	waitNoCalls(t, pbx)

	// A CA file that is not PEM is a configuration error.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listen: []ListenConfig{{Transport: UDP, Addr: netip.MustParseAddrPort("127.0.0.1:0")}}, RTPPorts: nextRTPRange()}
	cfg.Outbound.TLS.CAFile = bad
	if _, err := NewServer(cfg, nil); err == nil {
		t.Error("NewServer accepted a CA file without certificates")
	}
}
