package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pion/ice/v4"

	"github.com/tgsip/tgsip/telegram/wire"
)

// handleLocalCandidate turns each gathered candidate into the string tgcalls
// expects and hands it to OnCandidate.
func (s *Session) handleLocalCandidate(c ice.Candidate) {
	if c == nil {
		return // end of gathering; tgcalls does not signal it
	}
	host := ""
	for _, p := range s.ports {
		if rc, ok := c.(*ice.CandidateRelay); ok && rc == p.cand.Load() {
			host = p.hostname()
			break
		}
	}
	if host == "" && !s.cfg.P2PAllowed && c.Type() != ice.CandidateTypeRelay {
		return // never announce our addresses when P2P is not allowed
	}
	line := formatCandidate(c, host, s.ufrag)
	s.mu.Lock()
	f := s.onCand
	s.mu.Unlock()
	s.log.Debug("local candidate", "candidate", line)
	if f != nil {
		f(line)
	}
}

// runReflector says hello to one reflector until it answers, registers it
// as a local relay candidate, then leaves a timer to keep the binding alive
// every 10 s (tgcalls ReflectorPort::SendReflectorHello).
func (s *Session) runReflector(p *reflectorPort) {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	if !p.awaitReady(buf) {
		return
	}
	cand, err := ice.NewCandidateRelay(&ice.CandidateRelayConfig{
		Network:       "udp",
		Address:       p.addr.Addr().String(),
		Port:          int(p.addr.Port()),
		Component:     ice.ComponentRTP,
		Priority:      reflectorPriority,
		Foundation:    reflectorFoundation(p.addr.Addr()),
		RelayProtocol: "udp",
	})
	if err != nil {
		s.log.Warn("reflector candidate", "server_id", p.ServerID, "err", err)
		return
	}
	p.cand.Store(cand)
	s.log.Debug("reflector ready", "server_id", p.ServerID, "addr", p.addr)
	if err := s.agent.AddVirtualCandidate(cand, p); err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("adding reflector candidate", "server_id", p.ServerID, "err", err)
		}
		return
	}
	// From here the hellos run on a runtime timer until the port closes,
	// not in a goroutine that waits 10 s at a time for the call's life.
	p.startHellos()
}

// AddRemoteCandidate adds one candidate from the peer's Candidates message,
// with or without the "candidate:" prefix. Reflector candidates
// (reflector-<id>-<tag>.reflector) are mapped onto our reflector with the
// same server id and port; those without such a reflector, non-UDP, mDNS and
// (when P2P is not allowed) non-relay candidates are ignored, as tgcalls
// never pairs a relay with a non-relay candidate
// (skip_relay_to_non_relay_connections). Only malformed input is an error.
func (s *Session) AddRemoteCandidate(sdp string) error {
	c, err := parseCandidate(sdp)
	if err != nil {
		return err
	}
	if c.Protocol != "udp" {
		s.log.Debug("ignoring non-UDP remote candidate", "candidate", sdp)
		return nil
	}
	if id, tag, err := wire.ParseReflectorHostname(c.Address); err == nil {
		return s.addRemoteReflector(c, id, tag)
	}
	addr, err := netip.ParseAddr(c.Address)
	if err != nil {
		// Hostnames other than reflectors (mDNS .local) are not resolved.
		s.log.Debug("ignoring remote candidate with a hostname", "candidate", sdp)
		return nil
	}
	if !s.cfg.P2PAllowed && c.Type != "relay" {
		s.log.Debug("ignoring non-relay remote candidate (P2P not allowed)", "candidate", sdp)
		return nil
	}
	network := "udp4"
	if addr.Unmap().Is6() {
		if !s.t.IPv6 {
			return nil
		}
		network = "udp6"
	}
	cand, err := newRemoteCandidate(c, network, addr.Unmap().String(), int(c.Port))
	if err != nil {
		return fmt.Errorf("media: remote candidate: %w", err)
	}
	return s.agent.AddRemoteCandidate(cand)
}

func (s *Session) addRemoteReflector(c candidateLine, id uint8, tag uint32) error {
	matched := false
	for _, p := range s.ports {
		if p.ServerID != id || p.addr.Port() != c.Port {
			continue
		}
		matched = true
		// One remote random per reflector and call; a newer candidate
		// (peer restarted its port) replaces the older one.
		if old := p.remoteTag.Swap(tag); old != 0 && old != tag {
			s.log.Debug("remote reflector tag replaced", "server_id", id, "old", old, "new", tag)
		}
		network := "udp4"
		if p.addr.Addr().Is6() {
			network = "udp6"
		}
		c.Type = "relay"
		cand, err := newRemoteCandidate(c, network, p.addr.Addr().String(), int(p.addr.Port()))
		if err != nil {
			return fmt.Errorf("media: remote reflector candidate: %w", err)
		}
		if err := s.agent.AddRemoteCandidate(cand); err != nil {
			return err
		}
	}
	if !matched {
		s.log.Debug("remote reflector candidate without a matching reflector", "server_id", id, "port", c.Port)
	}
	return nil
}

var errCandidateType = errors.New("media: unsupported candidate type")

func newRemoteCandidate(c candidateLine, network, address string, port int) (ice.Candidate, error) {
	relAddr, relPort := c.RelAddr, int(c.RelPort)
	if _, err := netip.ParseAddr(relAddr); err != nil {
		relAddr, relPort = "", 0
	}
	foundation := c.Foundation
	if strings.ContainsAny(foundation, " \t") {
		foundation = ""
	}
	switch c.Type {
	case "host":
		return ice.NewCandidateHost(&ice.CandidateHostConfig{
			Network: network, Address: address, Port: port, Component: ice.ComponentRTP,
			Priority: c.Priority, Foundation: foundation,
		})
	case "srflx":
		return ice.NewCandidateServerReflexive(&ice.CandidateServerReflexiveConfig{
			Network: network, Address: address, Port: port, Component: ice.ComponentRTP,
			Priority: c.Priority, Foundation: foundation, RelAddr: relAddr, RelPort: relPort,
		})
	case "prflx":
		return ice.NewCandidatePeerReflexive(&ice.CandidatePeerReflexiveConfig{
			Network: network, Address: address, Port: port, Component: ice.ComponentRTP,
			Priority: c.Priority, Foundation: foundation, RelAddr: relAddr, RelPort: relPort,
		})
	case "relay":
		return ice.NewCandidateRelay(&ice.CandidateRelayConfig{
			Network: network, Address: address, Port: port, Component: ice.ComponentRTP,
			Priority: c.Priority, Foundation: foundation, RelAddr: relAddr, RelPort: relPort,
		})
	}
	return nil, errCandidateType
}
