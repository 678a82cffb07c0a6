package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/tgsip/tgsip/b2bua"
	"github.com/tgsip/tgsip/internal/config"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/telegram/account"
	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// trunkOptions change how buildTrunk wires a configuration.
type trunkOptions struct {
	// Logger gets every part's lines.
	Logger *slog.Logger
	// Transport is the Telegram media transport of every account; nil
	// derives it from the configuration (transportFor).
	Transport *media.Transport
	// OnAccountEnd, when set, is told when an account's Run returns
	// before the trunk closes (it needs login, its session file is
	// unusable, …); err is never nil.
	OnAccountEnd func(name string, err error)
	// Observer, when set, is told each call's steps (b2bua/timing.go);
	// the load run times the trunk's delays with it.
	Observer b2bua.Observer
}

// trunkParts are the running parts of a trunk built from a configuration:
// the SIP server, the Telegram accounts and the b2bua between them. `serve`
// runs them; `demo` reuses them with the emulator as Telegram.
type trunkParts struct {
	Trunk    *b2bua.Trunk
	SIP      *sip.Server
	Accounts []*account.Account

	log   *slog.Logger
	opts  trunkOptions
	grace time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// The Telegram media port (telegram.media_port), opened by Start when
	// mediaListen is set and closed after the accounts.
	tr          *media.Transport
	mediaListen string
	mediaPort   io.Closer
}

// buildTrunk turns a loaded configuration into the trunk's parts; nothing
// listens or connects before Start.
func buildTrunk(c *config.Config, opts trunkOptions) (*trunkParts, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger
	tr, listen := opts.Transport, ""
	if tr == nil {
		tr = transportFor(c, log)
		listen = mediaPortListen(c, tr)
	}
	srv, err := sip.NewServer(c.SIP, log.With("part", "sip"))
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	p := &trunkParts{SIP: srv, log: log, opts: opts, grace: c.Drain.Grace, tr: tr, mediaListen: listen}
	// The accounts hand incoming calls to the trunk, which is built from
	// the accounts: the handler reads p.Trunk, set below before any
	// account runs (Start).
	accs := make([]b2bua.Account, 0, len(c.Telegram.Accounts))
	for _, ac := range c.Telegram.Accounts {
		var self b2bua.Account
		a, err := account.New(ac, account.Options{
			Logger:           log.With("part", "telegram"),
			PeerFloodBackoff: c.Telegram.PeerFloodBackOff,
			Calls: tgcall.Options{
				Transport: tr,
				// A SIP caller waits for the DH key before anything
				// rings: it is made ahead of the call.
				PrepareKeys: true,
				OnIncoming:  func(call *tgcall.Call) { p.Trunk.Incoming(self, call) },
			},
		})
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("telegram account %q: %w", ac.Name, err)
		}
		self = b2bua.AccountOf(a)
		p.Accounts = append(p.Accounts, a)
		accs = append(accs, self)
	}
	p.Trunk, err = b2bua.NewTrunk(b2bua.TrunkOptions{
		SIP:         srv,
		Accounts:    accs,
		Routing:     c.Routing,
		Pool:        c.Telegram.PoolOptions(),
		Media:       mediaOptions(c, log),
		RingTimeout: c.Telegram.RingTimeout,
		Grace:       c.Drain.Grace,
		Logger:      log.With("part", "b2bua"),
		Observer:    opts.Observer,
	})
	if err != nil {
		srv.Close()
		return nil, err
	}
	return p, nil
}

// pollersFor are the SIP server's RTP pollers (sip.Server.UsePollers), one
// per CPU the runtime uses: each reads the SIP sockets of its passthrough
// calls from one goroutine and holds the Telegram transport's writes while
// it handles one wake-up's sockets, so that on a shared Telegram port
// (Transport.UDPMux) the packets of that wake-up toward Telegram leave in
// one sendmmsg(2) (docs/performance.md, "Passthrough, session 5"). None
// where the system has no Poller (not Linux): each endpoint then reads
// from a goroutine of its own.
func pollersFor(tr *media.Transport, log *slog.Logger) []*rtpendpoint.Poller {
	var ps []*rtpendpoint.Poller
	for range runtime.GOMAXPROCS(0) {
		p, err := rtpendpoint.NewPoller(rtpendpoint.PollerOptions{BeforeBatch: tr.HoldWrites, AfterBatch: tr.ReleaseWrites})
		if err != nil {
			log.Debug("no RTP poller: a goroutine per SIP endpoint", "err", err)
			break
		}
		ps = append(ps, p)
	}
	return ps
}

// transportFor is the Telegram media transport a configuration implies:
// when every account's server is on loopback (the emulator: tests, a
// local demo), candidates stay on loopback too, so no media leaves the
// machine; otherwise host candidates on every interface (media.Transport's
// defaults).
func transportFor(c *config.Config, log *slog.Logger) *media.Transport {
	t := &media.Transport{Logger: log.With("part", "telegram-media")}
	if len(c.Telegram.Accounts) == 0 {
		return t
	}
	for _, a := range c.Telegram.Accounts {
		ap, err := netip.ParseAddrPort(a.DCAddress)
		if err != nil || !ap.Addr().IsLoopback() {
			return t
		}
	}
	t.IncludeLoopback = true
	t.IPFilter = func(ip net.IP) bool { return ip.IsLoopback() }
	return t
}

// mediaPortListen is the address of the shared Telegram media port for
// transport t (transportFor), or "" for sockets per call. A transport kept
// on loopback (the emulator) gets an unspecified address's loopback
// counterpart: the shared port announces no loopback address when bound
// to an unspecified one (sharedMux.GetListenAddresses).
func mediaPortListen(c *config.Config, t *media.Transport) string {
	mp := c.Telegram.MediaPort
	if !mp.Shared {
		return ""
	}
	ap, err := netip.ParseAddrPort(mp.Listen)
	if err != nil || !t.IncludeLoopback || !ap.Addr().IsUnspecified() {
		return mp.Listen // check-config has vetted it; Start reports a bad one
	}
	lo := netip.IPv6Loopback()
	if ap.Addr().Is4() {
		lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.AddrPortFrom(lo, ap.Port()).String()
}

// openMediaPort opens the shared Telegram media port, when there is one,
// before any account runs (Start).
func (p *trunkParts) openMediaPort() error {
	if p.mediaListen == "" {
		return nil
	}
	mux, closer, err := media.NewSharedPort(p.mediaListen, p.log.With("part", "telegram-media"))
	if err != nil {
		return fmt.Errorf("telegram media port: %w", err)
	}
	p.tr.UDPMux, p.mediaPort = mux, closer
	p.log.Info("telegram media port", "listen", p.mediaListen, "addrs", fmt.Sprint(mux.GetListenAddresses()))
	return nil
}

// closeMediaPort closes the shared port after the last call on it.
func (p *trunkParts) closeMediaPort() {
	if p.mediaPort == nil {
		return
	}
	if err := p.mediaPort.Close(); err != nil {
		p.log.Warn("telegram media port close", "err", err)
	}
	p.mediaPort = nil
}

// Start starts the trunk, which binds the SIP server (a busy port fails
// here, before anything connects to Telegram), then runs the accounts,
// each reconnecting on its own until Close. An account that cannot run
// (it needs login, its session file is unusable) is logged and reported
// to OnAccountEnd; the pool never leases it and the others go on.
func (p *trunkParts) Start(ctx context.Context) error {
	if err := p.openMediaPort(); err != nil {
		p.SIP.Close()
		p.stopAccounts()
		return err
	}
	// After the media port: the pollers' hooks read the transport's
	// UDPMux, which openMediaPort sets.
	p.SIP.UsePollers(pollersFor(p.tr, p.log)...)
	if err := p.Trunk.Start(); err != nil {
		p.SIP.Close() // what the failed start opened
		p.stopAccounts()
		return err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	for _, a := range p.Accounts {
		p.wg.Go(func() {
			err := a.Run(actx)
			if err == nil || actx.Err() != nil {
				return
			}
			if errors.Is(err, account.ErrNeedsLogin) {
				p.log.Error("telegram account needs login; calls skip it until it is logged in with tgsip login and tgsip restarts",
					"account", a.Name(), "err", account.Explain(err))
			} else {
				p.log.Error("telegram account stopped; calls skip it", "account", a.Name(), "err", account.Explain(err))
			}
			if p.opts.OnAccountEnd != nil {
				p.opts.OnAccountEnd(a.Name(), err)
			}
		})
	}
	return nil
}

// Close drains the trunk: the SIP server stops taking calls at once (503
// with Retry-After to a new INVITE, 503 to an OPTIONS probe, so a load
// balancer sends calls elsewhere); b2bua.Trunk.Close refuses new Telegram
// calls, gives the active ones the configured grace (or until ctx ends),
// hangs the rest up on both legs and closes the SIP server; then the
// accounts disconnect (their sessions are in their files already) and
// their call engines end.
func (p *trunkParts) Close(ctx context.Context) error {
	p.SIP.Drain()
	p.log.Info("draining: new calls get 503, active calls may go on", "grace", p.grace, "active", p.SIP.Calls())
	err := p.Trunk.Close(ctx)
	p.stopAccounts()
	return err
}

func (p *trunkParts) stopAccounts() {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	for _, a := range p.Accounts {
		if err := a.Close(); err != nil {
			p.log.Warn("telegram account close", "account", a.Name(), "err", err)
		}
	}
	p.closeMediaPort() // every call on it has ended with its account
}

// mediaOptions is the calls' media settings from the config's media
// section.
func mediaOptions(c *config.Config, log *slog.Logger) b2bua.MediaOptions {
	bridge := c.Media.Bridge()
	return b2bua.MediaOptions{
		Opus: codec.Options{
			Bitrate:           c.Media.Opus.Bitrate,
			Complexity:        c.Media.Opus.CodecComplexity(),
			PacketLossPercent: c.Media.Opus.CodecPacketLoss(),
		},
		MediaTimeout: bridge.MediaTimeout,
		Jitter:       bridge.Jitter,
		FillAfter:    bridge.FillAfter,
		RenderDTMF:   bridge.RenderDTMF,
		DetectDTMF:   bridge.DetectDTMF,
		Logger:       log.With("part", "media"),
	}
}
