package sdp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Config is the trunk's media policy for the SIP leg, shared by every
// Session of a listener or trunk.
type Config struct {
	// Codecs is the codec preference, most preferred first; names are
	// PCMU, PCMA, G722 and opus (case-insensitive). Empty means
	// DefaultCodecs.
	Codecs []string `yaml:"codecs"`
	// DTMF offers and accepts telephone-event (RFC 4733). The zero Config
	// has it off; DefaultConfig turns it on.
	DTMF bool `yaml:"dtmf"`
	// PTime is the packetization we ask for, in ms (a=ptime, RFC 8866
	// §6.4); 0 means 20.
	PTime int `yaml:"ptime"`
	// SRTP is the SDES policy.
	SRTP SRTPPolicy `yaml:"srtp"`
	// Suites are the SDES crypto-suites we allow, in the order we offer
	// them. Empty means DefaultSuites.
	Suites []Suite `yaml:"suites"`
	// Addr is the media IP written in c= and o= lines: the NAT-advertised
	// address when the trunk is behind NAT. When invalid, the address of
	// the Session's local RTP socket is used; it must then not be
	// unspecified, or peers read c=0.0.0.0 as hold (RFC 3264 §8.4).
	Addr netip.Addr `yaml:"addr"`
	// SessionName is the s= line (RFC 8866 §5.3); empty means "tgsip".
	SessionName string `yaml:"session_name"`
	// Username is the o= user name (RFC 8866 §5.2); empty means "tgsip".
	Username string `yaml:"username"`
}

// DefaultConfig returns the defaults: all four codecs in DefaultCodecs
// order, DTMF on, 20 ms, SRTP off, DefaultSuites.
func DefaultConfig() Config {
	return Config{
		Codecs: slices.Clone(DefaultCodecs),
		DTMF:   true,
		PTime:  20,
		SRTP:   SRTPOff,
		Suites: slices.Clone(DefaultSuites),
	}
}

// Validate reports configuration mistakes in words a PBX admin
// understands. NewSession does not require a valid Config (it drops what
// it cannot use), but configuration loading should call Validate.
func (c Config) Validate() error {
	for _, name := range c.Codecs {
		if canonicalName(name) == "" {
			return fmt.Errorf("sdp: codec %q is not supported (use PCMU, PCMA, G722 or opus)", name)
		}
	}
	for _, s := range c.Suites {
		if _, ok := s.Profile(); !ok {
			return fmt.Errorf("sdp: SRTP suite %q is not supported (use one of %v)", s, DefaultSuites)
		}
	}
	if c.PTime < 0 || c.PTime > 200 || (c.PTime != 0 && c.PTime%10 != 0) {
		return fmt.Errorf("sdp: ptime %d ms: use a multiple of 10 between 10 and 200", c.PTime)
	}
	if c.SRTP < SRTPOff || c.SRTP > SRTPRequired {
		return fmt.Errorf("sdp: unknown SRTP policy %d", int(c.SRTP))
	}
	if c.Addr.IsValid() && (c.Addr.IsUnspecified() || c.Addr.IsMulticast()) {
		return fmt.Errorf("sdp: media address %s cannot be advertised", c.Addr)
	}
	return nil
}

// normalized fills defaults and drops what NewSession cannot use.
func (c Config) normalized(local netip.AddrPort) Config {
	n := c
	n.Codecs = nil
	for _, name := range c.Codecs {
		if cn := canonicalName(name); cn != "" && !slices.Contains(n.Codecs, cn) {
			n.Codecs = append(n.Codecs, cn)
		}
	}
	if len(n.Codecs) == 0 {
		n.Codecs = slices.Clone(DefaultCodecs)
	}
	n.Suites = nil
	for _, s := range c.Suites {
		if _, ok := s.Profile(); ok && !slices.Contains(n.Suites, s) {
			n.Suites = append(n.Suites, s)
		}
	}
	if len(n.Suites) == 0 {
		n.Suites = slices.Clone(DefaultSuites)
	}
	if n.PTime <= 0 {
		n.PTime = 20
	}
	if !n.Addr.IsValid() {
		n.Addr = local.Addr()
	}
	n.Addr = n.Addr.Unmap()
	// RFC 8866 §5.2: the user name has no spaces; neither field may
	// break the line.
	n.Username = strings.Join(strings.Fields(printable(n.Username)), "-")
	n.SessionName = strings.TrimSpace(printable(n.SessionName))
	if n.SessionName == "" {
		n.SessionName = "tgsip"
	}
	if n.Username == "" {
		n.Username = "tgsip"
	}
	return n
}

// printable drops control characters (CR and LF above all).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
