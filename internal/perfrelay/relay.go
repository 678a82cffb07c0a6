package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"crypto/rsa"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/b2bua"
	"github.com/tgsip/tgsip/rtpbridge"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/sip/sdp"
	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// msg is one line between the generator and the relay.
type msg struct {
	Op string
	// hello
	Emu    string   `json:",omitempty"`
	KeyPEM []byte   `json:",omitempty"`
	Code   string   `json:",omitempty"`
	Phones []string `json:",omitempty"`
	// call
	I          int           `json:",omitempty"`
	UserID     int64         `json:",omitempty"`
	Hash       int64         `json:",omitempty"`
	Peer       string        `json:",omitempty"`
	Keys       *sdp.SRTPKeys `json:",omitempty"`
	Codec      string        `json:",omitempty"`
	Complexity int           `json:",omitempty"`
	Addr       string        `json:",omitempty"`
	// answers
	Err string `json:",omitempty"`
	Mem *mem   `json:",omitempty"`
	// profiles
	Path string `json:",omitempty"`
	// bridge counters summed over the calls
	Stats *rtpbridge.Stats `json:",omitempty"`
}

// mem is the relay's memory after a GC.
type mem struct {
	RSS, HeapInuse, StackInuse, Sys uint64
	Goroutines                      int
}

func measureMem() *mem {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := &mem{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				m.RSS = kb * 1024
			}
		}
	}
	return m
}

type relay struct {
	log     *slog.Logger
	out     *json.Encoder
	outMu   sync.Mutex
	engines []*tgcall.Client
	tr      *media.Transport // every account's, on one shared port (login)
	sched   *rtpendpoint.Scheduler
	poller  *rtpendpoint.Poller // nil: each endpoint pushes from a goroutine of its own
	medMu   sync.Mutex
	media   []*b2bua.Media
}

// stats sums the bridges' counters.
func (r *relay) stats() *rtpbridge.Stats {
	r.medMu.Lock()
	defer r.medMu.Unlock()
	var sum rtpbridge.Stats
	add := func(to *rtpbridge.DirectionStats, d rtpbridge.DirectionStats) {
		to.Packets += d.Packets
		to.Lost += d.Lost
		to.Late += d.Late
		to.Concealed += d.Concealed
		to.Discarded += d.Discarded
		to.PacketsSent += d.PacketsSent
		to.WriteErrors += d.WriteErrors
	}
	for _, m := range r.media {
		st := m.Bridge.Stats()
		add(&sum.SIPToTelegram, st.SIPToTelegram)
		add(&sum.TelegramToSIP, st.TelegramToSIP)
	}
	return &sum
}

func (r *relay) send(m msg) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	_ = r.out.Encode(m)
}

func runRelay(log *slog.Logger) error {
	if os.Getenv("PERFRELAY_MEMPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation in the heap profile
	}
	mem0 := measureMem()
	r := &relay{log: log, out: json.NewEncoder(os.Stdout), sched: rtpendpoint.NewScheduler(0), tr: loopbackTransport(log)}
	if os.Getenv("PERFRELAY_NOPOLLER") == "" {
		var po rtpendpoint.PollerOptions
		if os.Getenv("PERFRELAY_NOHOLD") == "" {
			// As the trunk wires it: the SIP → Telegram packets of one
			// wake-up leave the shared Telegram port in one sendmmsg.
			po.BeforeBatch, po.AfterBatch = r.tr.HoldWrites, r.tr.ReleaseWrites
		}
		p, err := rtpendpoint.NewPoller(po)
		if err != nil {
			return err
		}
		r.poller = p
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cpuFile *os.File
	for in.Scan() {
		var m msg
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			return err
		}
		switch m.Op {
		case "hello":
			if err := r.login(ctx, m); err != nil {
				r.send(msg{Op: "ready", Err: err.Error()})
				return err
			}
			r.send(msg{Op: "ready", Mem: mem0})
			r.send(msg{Op: "mem", Mem: measureMem()})
		case "call":
			go func() {
				addr, err := r.call(ctx, m)
				a := msg{Op: "call", I: m.I, Addr: addr}
				if err != nil {
					a.Err = err.Error()
				}
				r.send(a)
			}()
		case "mem":
			r.send(msg{Op: "mem", Mem: measureMem(), Stats: r.stats()})
		case "profile":
			// Heap and goroutine profiles now; CPU from now to "stop".
			for _, p := range []string{"heap", "goroutine"} {
				if f, err := os.Create(m.Path + "/relay-" + p + ".pprof"); err == nil {
					_ = pprof.Lookup(p).WriteTo(f, 0)
					f.Close()
				}
			}
			if f, err := os.Create(m.Path + "/relay-cpu.pprof"); err == nil {
				if pprof.StartCPUProfile(f) == nil {
					cpuFile = f
				}
			}
			r.send(msg{Op: "profile"})
		case "stop":
			if cpuFile != nil {
				pprof.StopCPUProfile()
				cpuFile.Close()
				cpuFile = nil
			}
			r.send(msg{Op: "stop"})
		case "quit":
			return nil
		}
	}
	return in.Err()
}

// login logs one trunk account per phone in, all on one shared UDP port.
func (r *relay) login(ctx context.Context, m msg) error {
	blk, _ := pem.Decode(m.KeyPEM)
	if blk == nil {
		return errors.New("emulator key: no PEM")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		if k1, err1 := x509.ParsePKCS1PublicKey(blk.Bytes); err1 == nil {
			k, err = k1, nil
		} else {
			return fmt.Errorf("emulator key: %w", err)
		}
	}
	key, ok := k.(*rsa.PublicKey)
	if !ok {
		return errors.New("emulator key: not RSA")
	}
	addr, err := netip.ParseAddrPort(m.Emu)
	if err != nil {
		return err
	}
	mux, _, err := media.NewSharedPort("127.0.0.1:0", r.log)
	if err != nil {
		return err
	}
	tr := r.tr
	tr.UDPMux = mux
	r.engines = make([]*tgcall.Client, len(m.Phones))
	sem := make(chan struct{}, 4) // logins at once: gotd's key exchange is CPU-bound and times out when too many share a core
	var wg sync.WaitGroup
	errs := make([]error, len(m.Phones))
	for i, phone := range m.Phones {
		wg.Go(func() {
			r.engines[i], errs[i] = startAccount(ctx, emu.ClientOptionsFor(addr, key), phone, m.Code, tr, m.I, r.log, nil, sem)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loopbackTransport keeps every ICE candidate on 127.0.0.1.
func loopbackTransport(log *slog.Logger) *media.Transport {
	return &media.Transport{
		IncludeLoopback: true,
		InterfaceFilter: func(name string) bool { return name == "lo" },
		Logger:          log,
	}
}

// startAccount runs a gotd client logged in as phone with a call engine,
// and returns once the engine has started. sem bounds parallel logins.
func startAccount(ctx context.Context, opts telegram.Options, phone, code string, tr *media.Transport, maxCalls int,
	log *slog.Logger, onIncoming func(*tgcall.Call), sem chan struct{}) (*tgcall.Client, error) {
	sem <- struct{}{}
	defer func() { <-sem }()
	d := tg.NewUpdateDispatcher()
	opts.UpdateHandler = d
	opts.SessionStorage = &session.StorageMemory{}
	opts.Logger = nil
	client := telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	if onIncoming == nil {
		onIncoming = func(c *tgcall.Call) { c.Decline() }
	}
	eng := tgcall.NewClient(client.API(), tgcall.Options{Logger: log, Transport: tr, OnIncoming: onIncoming, MaxCalls: maxCalls})
	eng.Register(d)
	ready := make(chan error, 1)
	go func() {
		err := client.Run(ctx, func(ctx context.Context) error {
			flow := auth.NewFlow(auth.Constant(phone, "", auth.CodeAuthenticatorFunc(
				func(context.Context, *tg.AuthSentCode) (string, error) { return code, nil })), auth.SendCodeOptions{})
			if err := client.Auth().IfNecessary(ctx, flow); err != nil {
				return err
			}
			if err := eng.Start(ctx); err != nil {
				return err
			}
			ready <- nil
			<-ctx.Done()
			return ctx.Err()
		})
		if err != nil && ctx.Err() == nil {
			ready <- err
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", phone, err)
		}
		return eng, nil
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("account %s: not started in 5 min", phone)
	}
}

// call dials the far user from trunk account m.I and bridges the call
// with a SIP endpoint toward the generator's SIP peer, as b2bua does.
func (r *relay) call(ctx context.Context, m msg) (string, error) {
	if m.I < 0 || len(r.engines) == 0 {
		return "", fmt.Errorf("call %d: no account", m.I)
	}
	peer, err := netip.ParseAddrPort(m.Peer)
	if err != nil {
		return "", err
	}
	c := sdp.Codec{Name: sdp.Opus, PayloadType: 107, ClockRate: 48000, Channels: 2}
	if !strings.EqualFold(m.Codec, "opus") {
		c = sdp.Codec{Name: m.Codec, PayloadType: 0, ClockRate: 8000, Channels: 1}
	}
	neg := sdp.Negotiated{Codec: c, Remote: peer, RemoteRTCP: peer, RTCPMux: true,
		Direction: sdp.SendRecv, PTime: 20, SRTP: m.Keys}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return "", err
	}
	ep, err := rtpendpoint.New(conn, nil, neg, rtpendpoint.Options{Scheduler: r.sched, Poller: r.poller, Logger: r.log})
	if err != nil {
		conn.Close()
		return "", err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	call, err := r.engines[m.I%len(r.engines)].Dial(dctx, &tg.InputUser{UserID: m.UserID, AccessHash: m.Hash})
	if err != nil {
		ep.Close()
		return "", fmt.Errorf("dial: %w", err)
	}
	select {
	case <-call.Connected():
	case <-call.Done():
		ep.Close()
		return "", fmt.Errorf("call ended before it connected: %v", call.Err())
	case <-dctx.Done():
		call.Hangup()
		ep.Close()
		return "", errors.New("call not connected in 30 s")
	}
	med, err := b2bua.NewMedia(ep, neg, call.Conn(), call.Hangup, b2bua.MediaOptions{
		Opus:   codec.Options{Complexity: m.Complexity},
		Logger: r.log,
	})
	if err != nil {
		call.Hangup()
		ep.Close()
		return "", err
	}
	r.medMu.Lock()
	r.media = append(r.media, med)
	r.medMu.Unlock()
	go func() { _ = med.Run(ctx) }()
	return conn.LocalAddr().String(), nil
}
