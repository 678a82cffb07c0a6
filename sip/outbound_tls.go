package sip

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// config builds the client TLS configuration for connections to the PBX:
// the system roots plus CAFile, TLS 1.2 or later.
func (o OutboundTLS) config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile == "" {
		return c, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("sip: outbound.tls.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("sip: outbound.tls.ca_file %s: no PEM certificate in it", o.CAFile)
	}
	c.RootCAs = pool
	return c, nil
}
