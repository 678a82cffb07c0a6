package media

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
)

// candidateLine is one ICE candidate attribute as tgcalls trickles it
// (webrtc SdpSerializeCandidate):
//
//	candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
//	    [raddr <addr> rport <port>] [tcptype <t>] [generation <n>] [ufrag <u>] ...
type candidateLine struct {
	Foundation string
	Component  uint16
	Protocol   string // lower case: "udp" or "tcp"
	Priority   uint32
	Address    string // IP literal or hostname (reflector-<id>-<tag>.reflector)
	Port       uint16
	Type       string // host, srflx, prflx, relay
	RelAddr    string
	RelPort    uint16
	Ufrag      string
}

var errCandidateSyntax = errors.New("media: malformed candidate")

// parseCandidate parses a candidate attribute with or without the
// "candidate:" (or "a=candidate:") prefix. It checks syntax only.
func parseCandidate(s string) (candidateLine, error) {
	var c candidateLine
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "a=")
	if len(s) >= 10 && strings.EqualFold(s[:10], "candidate:") {
		s = s[10:]
	}
	f := strings.Fields(s)
	if len(f) < 8 || f[6] != "typ" {
		return c, fmt.Errorf("%w: %q", errCandidateSyntax, s)
	}
	c.Foundation = f[0]
	if c.Foundation == "" || len(c.Foundation) > 32 {
		return c, fmt.Errorf("%w: foundation", errCandidateSyntax)
	}
	comp, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil || comp == 0 {
		return c, fmt.Errorf("%w: component %q", errCandidateSyntax, f[1])
	}
	c.Component = uint16(comp)
	c.Protocol = strings.ToLower(f[2])
	prio, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil {
		return c, fmt.Errorf("%w: priority %q", errCandidateSyntax, f[3])
	}
	c.Priority = uint32(prio)
	c.Address = f[4]
	if c.Address == "" {
		return c, fmt.Errorf("%w: address", errCandidateSyntax)
	}
	port, err := strconv.ParseUint(f[5], 10, 16)
	if err != nil {
		return c, fmt.Errorf("%w: port %q", errCandidateSyntax, f[5])
	}
	c.Port = uint16(port)
	c.Type = strings.ToLower(f[7])
	switch c.Type {
	case "host", "srflx", "prflx", "relay":
	default:
		return c, fmt.Errorf("%w: type %q", errCandidateSyntax, f[7])
	}
	// The rest are key/value pairs; unknown keys are ignored like webrtc does.
	rest := f[8:]
	if len(rest)%2 != 0 {
		return c, fmt.Errorf("%w: dangling attribute %q", errCandidateSyntax, rest[len(rest)-1])
	}
	for i := 0; i < len(rest); i += 2 {
		k, v := rest[i], rest[i+1]
		switch k {
		case "raddr":
			c.RelAddr = v
		case "rport":
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return c, fmt.Errorf("%w: rport %q", errCandidateSyntax, v)
			}
			c.RelPort = uint16(p)
		case "ufrag":
			c.Ufrag = v
		}
	}
	return c, nil
}

// formatCandidate renders a local candidate in the form tgcalls parses. The
// component is always 1 (rtcp-mux; tgcalls forces it too). host overrides
// the address (reflector hostnames).
func formatCandidate(c ice.Candidate, host string, ufrag string) string {
	var b strings.Builder
	b.Grow(128)
	addr := c.Address()
	if host != "" {
		addr = host
	}
	b.WriteString("candidate:")
	b.WriteString(c.Foundation())
	b.WriteString(" 1 udp ")
	b.WriteString(strconv.FormatUint(uint64(c.Priority()), 10))
	b.WriteByte(' ')
	b.WriteString(addr)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(c.Port()))
	b.WriteString(" typ ")
	b.WriteString(c.Type().String())
	if ra := c.RelatedAddress(); ra != nil && ra.Address != "" && host == "" {
		b.WriteString(" raddr ")
		b.WriteString(ra.Address)
		b.WriteString(" rport ")
		b.WriteString(strconv.Itoa(ra.Port))
	}
	b.WriteString(" generation 0")
	if ufrag != "" {
		b.WriteString(" ufrag ")
		b.WriteString(ufrag)
	}
	b.WriteString(" network-id 1")
	return b.String()
}
