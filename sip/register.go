package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// PBXStatus is what the server knows about the PBX it sends calls to.
type PBXStatus struct {
	// Registered: our REGISTER is currently accepted (Outbound.Register).
	Registered bool
	// Up: the last OPTIONS ping got a response other than 401, 403 or
	// 404 (Outbound.OptionsPing).
	Up bool
	// PingRejected counts pings the PBX answered 401, 403 or 404: it does
	// not know the identity we ping with (outbound.from_user, else
	// outbound.username), a configuration problem (logged at warn once
	// per spell).
	PingRejected uint64
}

// PBX reports the registration and reachability of the PBX.
func (s *Server) PBX() PBXStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pbx
}

func (s *Server) setPBX(f func(*PBXStatus)) {
	s.mu.Lock()
	before := s.pbx
	f(&s.pbx)
	after := s.pbx
	s.mu.Unlock()
	if before.Up != after.Up {
		s.log.Info("PBX reachability changed", "up", after.Up)
	}
	if before.Registered != after.Registered {
		s.log.Info("PBX registration changed", "registered", after.Registered)
	}
}

// startPBXWatch starts the registration and ping loops when configured.
func (s *Server) startPBXWatch() {
	if s.cfg.Outbound.Register {
		s.goTracked(s.registerLoop)
	}
	if s.cfg.Outbound.OptionsPing > 0 {
		s.goTracked(s.pingLoop)
	}
}

// registration is the state of one registration binding: RFC 3261 §10.2.4
// keeps the Call-ID and raises the CSeq across refreshes.
type registration struct {
	callID string
	tag    string
	cseq   uint32
}

func (s *Server) outboundTarget() (sip.Uri, string, error) {
	var u sip.Uri
	if err := sip.ParseUri(s.cfg.Outbound.URI, &u); err != nil {
		return u, "", fmt.Errorf("sip: outbound uri: %w", err)
	}
	tp := "UDP"
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToUpper(v)
	} else if u.IsEncrypted() {
		tp = "TLS"
	}
	return u, tp, nil
}

// registerLoop registers, refreshes at 3/4 of the granted expiry, and
// retries failures with exponential backoff (1 s … 5 min, with jitter).
func (s *Server) registerLoop() {
	reg := &registration{callID: sip.GenerateTagN(24) + "@" + s.hostForURIs(), tag: sip.GenerateTagN(12), cseq: 1}
	backoff := time.Second
	for {
		granted, err := s.register(reg, s.cfg.Outbound.RegisterExpires)
		wait := granted * 3 / 4
		if err != nil {
			s.setPBX(func(p *PBXStatus) { p.Registered = false })
			s.log.Warn("REGISTER failed", "err", err, "retry_in", backoff)
			wait = backoff + rand.N(backoff/4+1)
			backoff = min(backoff*2, 5*time.Minute)
		} else {
			s.setPBX(func(p *PBXStatus) { p.Registered = true })
			backoff = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			if err == nil {
				// Best effort: remove the binding so the PBX stops
				// routing to an instance that is going away.
				_, _ = s.register(reg, 0)
			}
			return
		}
	}
}

// register sends one REGISTER (answering one challenge) and returns the
// expiry the registrar granted.
func (s *Server) register(reg *registration, expires time.Duration) (time.Duration, error) {
	target, tp, err := s.outboundTarget()
	if err != nil {
		return 0, err
	}
	cfg := s.cfg.Outbound
	domain := cfg.FromDomain
	if domain == "" {
		domain = target.Host
	}
	aor := sip.Uri{Scheme: "sip", User: cfg.Username, Host: domain}
	timeout := 64 * s.cfg.T1
	if expires == 0 {
		timeout = 4 * s.cfg.T1 // unregistering at shutdown must not hold it up
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var auth sip.Header
	for attempt := 0; attempt < 2; attempt++ {
		ruri := sip.Uri{Scheme: target.Scheme, Host: target.Host, Port: target.Port, UriParams: target.UriParams}
		req := sip.NewRequest(sip.REGISTER, ruri)
		from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
		from.Params.Add("tag", reg.tag)
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
		cid := sip.CallIDHeader(reg.callID)
		req.AppendHeader(&cid)
		reg.cseq++
		req.AppendHeader(&sip.CSeqHeader{SeqNo: reg.cseq, MethodName: sip.REGISTER})
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
		req.AppendHeader(s.contact(tp, cfg.Username))
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
		if auth != nil {
			req.AppendHeader(auth)
		}
		req.SetTransport(tp)
		res, err := s.do(ctx, req)
		if err != nil {
			return 0, err
		}
		switch {
		case res.IsSuccess():
			return grantedExpiry(res, expires), nil
		case (res.StatusCode == 401 || res.StatusCode == 407) && auth == nil:
			if auth, err = s.digestAnswer(res, "REGISTER", ruri.Addr()); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("registrar answered %d %s", res.StatusCode, res.Reason)
		}
	}
	return 0, errors.New("registrar rejected our credentials")
}

// grantedExpiry reads the expiry from the 2xx: our Contact's expires
// parameter, else Expires, else what we asked for.
func grantedExpiry(res *sip.Response, asked time.Duration) time.Duration {
	if c := res.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}

// digestAnswer builds the Authorization (401) or Proxy-Authorization (407)
// header for the strongest challenge we support.
func (s *Server) digestAnswer(res *sip.Response, method, uri string) (sip.Header, error) {
	cfg := s.cfg.Outbound
	if cfg.Username == "" {
		return nil, errors.New("no credentials configured")
	}
	name, authName := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		name, authName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var best *digest.Challenge
	for _, h := range res.GetHeaders(name) {
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			continue
		}
		ch.Algorithm = strings.ToUpper(ch.Algorithm)
		if _, _, ok := hashFor(ch.Algorithm); !ok {
			continue
		}
		if best == nil || (ch.Algorithm == "SHA-256" && best.Algorithm != "SHA-256") {
			best = ch
		}
	}
	if best == nil {
		return nil, errors.New("no usable digest challenge")
	}
	cred, err := digest.Digest(best, digest.Options{Method: method, URI: uri, Username: cfg.Username, Password: cfg.Password})
	if err != nil {
		return nil, err
	}
	return sip.NewHeader(authName, cred.String()), nil
}
