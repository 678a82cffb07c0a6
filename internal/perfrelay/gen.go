package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip/sdp"
	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Paths a packet takes; latency and counts are kept per path.
const (
	pathSIPToTG = iota // ours: SIP peer → relay → Telegram user
	pathTGToSIP        // ours: Telegram user → relay → SIP peer
	pathAToB           // rtpengine: SDES side A → plain side B
	pathBToA           // rtpengine: plain side B → SDES side A
	pathDirect         // baseline: generator → generator, no relay
	nPaths
)

var pathNames = [nPaths]string{"ours SIP→TG", "ours TG→SIP", "rtpengine SRTP→RTP", "rtpengine RTP→SRTP", "direct (baseline)"}

var magic = [4]byte{'T', 'G', 'S', 'P'}

// hist is a latency histogram in 10 µs buckets up to 1 s.
type hist struct{ b [100001]atomic.Uint32 }

func (h *hist) add(d time.Duration) {
	i := int(d / (10 * time.Microsecond))
	h.b[min(max(i, 0), len(h.b)-1)].Add(1)
}

func (h *hist) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.b {
		total += uint64(h.b[i].Load())
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var n uint64
	for i := range h.b {
		n += uint64(h.b[i].Load())
		if n >= want {
			return time.Duration(i+1) * 10 * time.Microsecond
		}
	}
	return time.Second
}

// stats of one path in the window.
type pathStats struct {
	sent, recv atomic.Uint64
	lat        hist
}

type gen struct {
	o     options
	log   *slog.Logger
	epoch time.Time
	// window bounds, ns since epoch; packets sent inside count.
	winStart, winEnd atomic.Int64
	paths            [nPaths]pathStats
	passthrough      bool
	opusFrames       [][]byte // what the Telegram user sends when transcoding
	pcmuFrames       [][]byte // what the SIP peer sends when transcoding
	opusOnset        time.Duration
}

func (g *gen) now() int64 { return int64(time.Since(g.epoch)) }

func (g *gen) inWindow(t int64) bool { return t >= g.winStart.Load() && t < g.winEnd.Load() }

// call is the generator's side of one call.
type call struct {
	i       int
	sip     *net.UDPConn
	sipDst  netip.AddrPort
	tx, rx  *srtp.Context
	sipPT   uint8
	sipSeq  uint16
	user    *tgcall.Conn
	userPT  uint8
	userSSR uint32
	userSeq uint16
	// rtpengine
	a, b       *net.UDPConn
	aDst, bDst netip.AddrPort
	atx, arx   *srtp.Context
	aSeq, bSeq uint16
	direct     *net.UDPConn // baseline: sends to itself
	// transcoding: send times of the last bursts not yet heard, and the
	// decoders of what arrives
	burstSIP, burstTG atomic.Int64
	userDec, sipDec   rtpbridge.Decoder
	wire, plain       []byte
	hdr               rtp.Header
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func listenLo() (*net.UDPConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
}

func runGen(o options, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &gen{o: o, log: log, epoch: time.Now(), passthrough: strings.EqualFold(o.codec, "opus")}
	g.winStart.Store(math.MaxInt64)
	g.winEnd.Store(math.MaxInt64)
	if err := g.makeFrames(); err != nil {
		return err
	}

	// The emulated Telegram: a trunk account and a far user per call.
	n, err := emu.New(emu.Options{Addr: "127.0.0.1:0", Logger: log})
	if err != nil {
		return err
	}
	var trunkPhones []string
	var users []emu.User
	for i := range o.accounts {
		tp := fmt.Sprintf("+1555%07d", 2000000+i)
		if _, err := n.AddUser(emu.User{Phone: tp, FirstName: "Trunk" + strconv.Itoa(i)}); err != nil {
			return err
		}
		trunkPhones = append(trunkPhones, tp)
		u, err := n.AddUser(emu.User{Phone: fmt.Sprintf("+1555%07d", 3000000+i), FirstName: "User" + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		users = append(users, u)
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	// n is not closed: the process ends with the run, and closing waits
	// for the accounts' connections.

	// The relay, pinned, GOMAXPROCS=1.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{self, "-relay"}
	if o.relayCPU >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(o.relayCPU)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(o.relayProcs))
	if !o.poller {
		cmd.Env = append(cmd.Env, "PERFRELAY_NOPOLLER=1")
	}
	if !o.hold {
		cmd.Env = append(cmd.Env, "PERFRELAY_NOHOLD=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // ends with the generator, however it ends
	if o.heapAll {
		cmd.Env = append(cmd.Env, "PERFRELAY_MEMPROFILE=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	enc := json.NewEncoder(stdin)
	replies := make(chan msg, o.calls+16)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m msg
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				replies <- m
			}
		}
		close(replies)
	}()
	await := func(op string) (msg, error) {
		for {
			select {
			case m, ok := <-replies:
				if !ok {
					return msg{}, errors.New("relay exited")
				}
				if m.Op == op {
					if m.Err != "" {
						return m, errors.New(m.Err)
					}
					return m, nil
				}
			case <-time.After(10 * time.Minute):
				return msg{}, fmt.Errorf("relay: no %s", op)
			}
		}
	}
	if o.profile != "" {
		// The generator's own profile covers the logins and call setups.
		if f, err := os.Create(o.profile + "/gen-setup-cpu.pprof"); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer func() { stopGenProfile() }()
				stopGenProfile = sync.OnceFunc(pprof.StopCPUProfile)
			}
		}
	}
	began := time.Now()
	if err := enc.Encode(msg{Op: "hello", Emu: n.Addr().String(), KeyPEM: n.PublicKeyPEM(), Code: "12345", Phones: trunkPhones, I: o.maxCalls()}); err != nil {
		return err
	}

	// The far users, each on sockets of its own.
	incoming := make([]chan *tgcall.Call, o.accounts)
	sem := make(chan struct{}, 4) // logins at once: gotd's key exchange is CPU-bound and times out when too many share a core
	var wg sync.WaitGroup
	errs := make([]error, max(o.calls, o.accounts))
	tr := loopbackTransport(log)
	for i := range o.accounts {
		incoming[i] = make(chan *tgcall.Call, 1)
		wg.Go(func() {
			_, errs[i] = startAccount(ctx, n.ClientOptions(), users[i].Phone, "12345", tr, o.maxCalls(), log, func(c *tgcall.Call) {
				c.Accept()
				select {
				case incoming[i] <- c:
				default:
				}
			}, sem)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ready, err := await("ready")
	if err != nil {
		return err
	}
	mem0 := ready.Mem
	m1, err := await("mem")
	if err != nil {
		return err
	}
	mem1 := m1.Mem
	fmt.Fprintf(os.Stderr, "%d trunk and %d user accounts logged in in %v\n", o.accounts, o.accounts, time.Since(began).Round(time.Millisecond))

	var ng *ngClient
	var rtpePID int
	if o.rtpengine {
		var stop func()
		ng, rtpePID, stop, err = startRTPEngine(o.relayCPU)
		if err != nil {
			return err
		}
		defer stop()
	}

	// Calls, o.par at a time.
	began = time.Now()
	calls := make([]*call, o.calls)
	pending := map[int]chan msg{}
	var pmu sync.Mutex
	go func() {
		for m := range replies {
			if m.Op == "call" {
				pmu.Lock()
				ch := pending[m.I]
				pmu.Unlock()
				if ch != nil {
					ch <- m
				}
				continue
			}
			pmu.Lock()
			ch := pending[-1]
			pmu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}()
	ctl := make(chan msg, 4)
	pmu.Lock()
	pending[-1] = ctl
	pmu.Unlock()
	var encMu sync.Mutex
	send := func(m msg) error {
		encMu.Lock()
		defer encMu.Unlock()
		return enc.Encode(m)
	}
	// The calls of one account are set up one after the other (its
	// far user's next incoming call is then the one asked for).
	csem := make(chan struct{}, o.par)
	for j := range o.accounts {
		wg.Go(func() {
			csem <- struct{}{}
			defer func() { <-csem }()
			for i := j; i < o.calls; i += o.accounts {
				c, err := g.setupCall(i, users[j], incoming[j], send, &pmu, pending, ng)
				calls[i], errs[i] = c, err
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d calls connected in %v\n", o.calls, time.Since(began).Round(time.Millisecond))

	stopGenProfile()
	// Receivers, then the load.
	for _, c := range calls {
		go g.recvSIP(c)
		go g.recvUser(c)
		if c.a != nil {
			go g.recvA(c)
			go g.recvB(c)
		}
		go g.recvDirect(c)
	}
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		if !o.idle {
			g.load(calls, stopLoad)
		}
		close(loadDone)
	}()
	time.Sleep(o.warm)
	if o.profile != "" {
		_ = send(msg{Op: "profile", Path: o.profile})
		<-ctl
	}
	relayCPU0, rtpeCPU0 := procCPU(cmd.Process.Pid), procCPU(rtpePID)
	udp0 := udpErrors()
	t0 := g.now()
	g.winEnd.Store(t0 + int64(o.dur))
	g.winStart.Store(t0)
	time.Sleep(o.dur)
	relayCPU1, rtpeCPU1 := procCPU(cmd.Process.Pid), procCPU(rtpePID)
	udp1 := udpErrors()
	if o.profile != "" {
		_ = send(msg{Op: "stop"})
		<-ctl
	}
	time.Sleep(300 * time.Millisecond) // stragglers of the window
	_ = send(msg{Op: "mem"})
	m2 := <-ctl
	close(stopLoad)
	<-loadDone

	// Report.
	secs := o.dur.Seconds()
	fmt.Printf("perfrelay: %d calls on %d trunk accounts, codec %s, window %v after %v warm-up, relay pinned to CPU %d (GOMAXPROCS=%d, SIP poller %v, held writes %v)\n",
		o.calls, o.accounts, o.codec, o.dur, o.warm, o.relayCPU, o.relayProcs, o.poller, o.poller && o.hold)
	due := uint64(float64(o.calls) * 50 * secs)
	fmt.Printf("generator sent %.1f %% of the %d packets due per path (below ~99 %% it could not keep up: latency then measures the generator)\n",
		100*float64(g.paths[pathDirect].sent.Load())/float64(due), due)
	if !g.passthrough {
		fmt.Println("transcoding: latency of ours is from each call's once-a-second 1 kHz burst, onset sent to onset heard (less the Telegram user's own encoder delay)")
	}
	fmt.Printf("%-20s %9s %9s %8s %9s %9s %9s\n", "path", "sent", "received", "loss", "p50", "p99", "p99.9")
	for p := range nPaths {
		st := &g.paths[p]
		s, r := st.sent.Load(), st.recv.Load()
		if s == 0 {
			continue
		}
		fmt.Printf("%-20s %9d %9d %7.3f%% %9v %9v %9v\n", pathNames[p], s, r, 100*float64(int64(s)-int64(r))/float64(s),
			st.lat.quantile(0.5), st.lat.quantile(0.99), st.lat.quantile(0.999))
	}
	fmt.Printf("UDP receive buffer errors on the machine during the window (all processes): %d\n", udp1-udp0)
	fwd := g.paths[pathSIPToTG].recv.Load() + g.paths[pathTGToSIP].recv.Load()
	rc := relayCPU1 - relayCPU0
	fmt.Printf("ours:      %.1f %% of a core, %d packets forwarded, %.2f µs CPU per forwarded packet, %.2f ms CPU per call-second\n",
		100*rc.Seconds()/secs, fwd, float64(rc.Microseconds())/math.Max(float64(fwd), 1), rc.Seconds()*1000/secs/float64(o.calls))
	if rtpePID != 0 {
		fwdE := g.paths[pathAToB].recv.Load() + g.paths[pathBToA].recv.Load()
		ec := rtpeCPU1 - rtpeCPU0
		ours := float64(rc.Microseconds()) / math.Max(float64(fwd), 1)
		theirs := float64(ec.Microseconds()) / math.Max(float64(fwdE), 1)
		fmt.Printf("rtpengine: %.1f %% of a core, %d packets forwarded, %.2f µs CPU per forwarded packet, %.2f ms CPU per call-second\n",
			100*ec.Seconds()/secs, fwdE, theirs, ec.Seconds()*1000/secs/float64(o.calls))
		fmt.Printf("ours / rtpengine: %.2f× CPU per packet\n", ours/theirs)
	}
	m := m2.Mem
	mb := func(b uint64) float64 { return float64(b) / (1 << 20) }
	perCall := (float64(m.RSS) - float64(mem1.RSS)) / float64(o.calls) / (1 << 20)
	perAcct := (float64(mem1.RSS) - float64(mem0.RSS)) / float64(o.accounts) / (1 << 20)
	gCall := float64(m.Goroutines-mem1.Goroutines) / float64(o.calls)
	gAcct := float64(mem1.Goroutines-mem0.Goroutines) / float64(o.accounts)
	if st := m2.Stats; st != nil {
		for _, d := range []struct {
			name string
			s    rtpbridge.DirectionStats
		}{{"SIP→TG", st.SIPToTelegram}, {"TG→SIP", st.TelegramToSIP}} {
			fmt.Printf("relay's bridges %s (whole run): received %d, lost %d, late %d, concealed %d, discarded %d, sent %d, write errors %d\n",
				d.name, d.s.Packets, d.s.Lost, d.s.Late, d.s.Concealed, d.s.Discarded, d.s.PacketsSent, d.s.WriteErrors)
		}
	}
	fmt.Printf("relay memory after GC: start %.1f MB RSS, %d goroutines; %d accounts logged in: %.1f MB, %d; with %d calls: %.1f MB, %d (Go heap in use %.1f MB, stacks %.1f MB)\n",
		mb(mem0.RSS), mem0.Goroutines, o.accounts, mb(mem1.RSS), mem1.Goroutines, o.calls, mb(m.RSS), m.Goroutines, mb(m.HeapInuse), mb(m.StackInuse))
	fmt.Printf("per call: %.3f MB RSS, %.1f goroutines; per account: %.3f MB, %.1f goroutines; a call with an account of its own: %.3f MB, %.1f goroutines\n",
		perCall, gCall, perAcct, gAcct, perCall+perAcct, gCall+gAcct)
	_ = send(msg{Op: "quit"})
	return nil
}

// udpErrors is the machine's UDP RcvbufErrors count (/proc/net/snmp):
// datagrams dropped because a socket's receive buffer was full.
func udpErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}

var stopGenProfile = func() {}

// procCPU is a process's user+system CPU time from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields 14 and 15 of proc(5) (utime, stime) are 11 and 12 here.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// makeFrames prepares what the far ends send when transcoding: 20 ms PCMU
// packets and Opus frames of -tg-frame ms (48 kHz, as tgcalls encodes;
// tgcalls sends 60 ms), 50 of each per cycle with a burst (below) in the
// first 20 ms of the cycle's first: the PCMU cycle is 1 s, the Opus
// cycle 50 frames.
func (g *gen) makeFrames() error {
	if g.passthrough {
		return nil
	}
	oe, err := codec.NewOpusEncoder(codec.Options{SampleRate: 48000})
	if err != nil {
		return err
	}
	ue, err := codec.NewEncoder(g.o.codec, 8000, codec.Options{})
	if err != nil {
		return err
	}
	// Once a second a 20 ms burst of 1 kHz, silence between: the onset
	// of each burst, found again in what arrives, times the transcoded
	// paths (their payloads are the relay's own, so they carry no send
	// time).
	pcm48, pcm8 := make([]int16, 48*g.o.tgFrame), make([]int16, 160)
	buf := make([]byte, 1500)
	for cycle := range 2 {
		for k := range 50 {
			clear(pcm48)
			clear(pcm8)
			if k == 0 {
				audiotest.Tone(pcm48[:960], 1000, 48000, 0)
				audiotest.Tone(pcm8, 1000, 8000, 0)
			}
			n, err := oe.Encode(pcm48, buf)
			if err != nil {
				return err
			}
			if cycle == 0 {
				continue // the encoder's state settles over a first cycle
			}
			g.opusFrames = append(g.opusFrames, append([]byte(nil), buf[:n]...))
			n, err = ue.Encode(pcm8, buf)
			if err != nil {
				return err
			}
			g.pcmuFrames = append(g.pcmuFrames, append([]byte(nil), buf[:n]...))
		}
	}
	// Where the burst starts in the Opus frames as a decoder hears them
	// (the encoder's lookahead delays it): the Telegram user's own delay,
	// taken off the Telegram → SIP latency.
	od, err := codec.NewOpusDecoder(8000)
	if err != nil {
		return err
	}
	pcm := make([]int16, 8*g.o.tgFrame)
	for cycle := range 2 {
		for k, f := range g.opusFrames {
			n, err := od.Decode(f, pcm)
			if err != nil {
				return err
			}
			if cycle == 1 {
				if i := onset(pcm[:n]); i >= 0 && g.opusOnset == 0 {
					g.opusOnset = time.Duration(k*n+i) * time.Second / 8000
				}
			}
		}
	}
	return nil
}

// burstLevel is the sample magnitude that marks a burst's onset (the
// bursts are at 16000/√2 RMS, silence decodes to near 0).
const burstLevel = 4000

// onset is the index of the first sample at burstLevel, -1 for none.
func onset(pcm []int16) int {
	for i, v := range pcm {
		if v >= burstLevel || v <= -burstLevel {
			return i
		}
	}
	return -1
}

// burstHeard records the latency of a burst whose onset is sample i (at
// 8 kHz) of a 20 ms frame that arrived now; sent is the send time of the
// packet the burst started in, less the far end's own delay.
func (g *gen) burstHeard(p int, pending *atomic.Int64, i int, delay time.Duration) {
	sent := pending.Swap(0)
	if sent == 0 || !g.inWindow(sent) {
		return
	}
	lat := time.Duration(g.now()-sent) + time.Duration(i)*time.Second/8000 - delay
	g.paths[p].lat.add(lat)
}

// setupCall makes the SIP peer, has the relay dial the user and bridge,
// and (with rtpengine) sets up rtpengine's call.
func (g *gen) setupCall(i int, u emu.User, incoming chan *tgcall.Call, send func(msg) error,
	pmu *sync.Mutex, pending map[int]chan msg, ng *ngClient) (*call, error) {
	suite := sdp.AESCM128HMACSHA180
	profile, _ := suite.Profile()
	keys := &sdp.SRTPKeys{Profile: profile,
		LocalKey: randomBytes(suite.KeyLen()), LocalSalt: randomBytes(suite.SaltLen()),
		RemoteKey: randomBytes(suite.KeyLen()), RemoteSalt: randomBytes(suite.SaltLen())}
	c := &call{i: i, wire: make([]byte, 0, 1500), plain: make([]byte, 1500)}
	var err error
	if c.sip, err = listenLo(); err != nil {
		return nil, err
	}
	// RFC 4568 §6.1: the peer sends with the trunk's remote key.
	if c.tx, err = srtp.CreateContext(keys.RemoteKey, keys.RemoteSalt, profile); err != nil {
		return nil, err
	}
	if c.rx, err = srtp.CreateContext(keys.LocalKey, keys.LocalSalt, profile); err != nil {
		return nil, err
	}
	c.sipPT = 107
	if !g.passthrough {
		c.sipPT = 0
	}
	ch := make(chan msg, 1)
	pmu.Lock()
	pending[i] = ch
	pmu.Unlock()
	if err := send(msg{Op: "call", I: i, UserID: u.ID, Hash: u.AccessHash, Peer: c.sip.LocalAddr().String(),
		Keys: keys, Codec: g.o.codec, Complexity: g.o.complexity}); err != nil {
		return nil, err
	}
	var in *tgcall.Call
	select {
	case in = <-incoming:
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("call %d: no incoming call", i)
	}
	var a msg
	select {
	case a = <-ch:
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("call %d: relay did not answer", i)
	}
	if a.Err != "" {
		return nil, fmt.Errorf("call %d: %s", i, a.Err)
	}
	select {
	case <-in.Connected():
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("call %d: user not connected", i)
	}
	if c.sipDst, err = netip.ParseAddrPort(a.Addr); err != nil {
		return nil, err
	}
	c.user = in.Conn()
	if !g.passthrough {
		if c.userDec, err = codec.NewOpusDecoder(8000); err != nil {
			return nil, err
		}
		if c.sipDec, err = codec.NewDecoder(g.o.codec, 8000, codec.Options{}); err != nil {
			return nil, err
		}
	}
	au := c.user.Audio()
	c.userPT, c.userSSR = au.PayloadType, au.SSRC
	if c.direct, err = listenLo(); err != nil {
		return nil, err
	}
	if ng != nil {
		if err := g.setupRTPEngine(c, ng); err != nil {
			return nil, fmt.Errorf("call %d: rtpengine: %w", i, err)
		}
	}
	return c, nil
}

var (
	reMPort  = regexp.MustCompile(`(?m)^m=audio (\d+) `)
	reCrypto = regexp.MustCompile(`(?m)^a=crypto:\d+ AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)`)
)

// setupRTPEngine makes rtpengine's call for c: side A offers SDES-SRTP,
// side B is offered (and answers) plain RTP.
func (g *gen) setupRTPEngine(c *call, ng *ngClient) error {
	var err error
	if c.a, err = listenLo(); err != nil {
		return err
	}
	if c.b, err = listenLo(); err != nil {
		return err
	}
	key, salt := randomBytes(16), randomBytes(14)
	if c.atx, err = srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
		return err
	}
	sdpFor := func(port int, proto, extra string) string {
		return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			fmt.Sprintf("m=audio %d %s 107\r\n", port, proto) +
			"a=rtpmap:107 opus/48000/2\r\na=sendrecv\r\na=rtcp-mux\r\n" + extra
	}
	callID := fmt.Sprintf("perfrelay-%d-%d", os.Getpid(), c.i)
	inline := base64.StdEncoding.EncodeToString(append(append([]byte(nil), key...), salt...))
	offer, err := ng.call(map[string]any{
		"command": "offer", "call-id": callID, "from-tag": "a",
		"sdp":                sdpFor(c.a.LocalAddr().(*net.UDPAddr).Port, "RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+inline+"\r\n"),
		"transport-protocol": "RTP/AVP", "ICE": "remove",
	})
	if err != nil {
		return err
	}
	toB, _ := offer["sdp"].(string)
	mb := reMPort.FindStringSubmatch(toB)
	if mb == nil {
		return fmt.Errorf("offer answer without m= line")
	}
	pb, _ := strconv.Atoi(mb[1])
	c.bDst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(pb))
	answer, err := ng.call(map[string]any{
		"command": "answer", "call-id": callID, "from-tag": "a", "to-tag": "b",
		"sdp": sdpFor(c.b.LocalAddr().(*net.UDPAddr).Port, "RTP/AVP", ""),
	})
	if err != nil {
		return err
	}
	toA, _ := answer["sdp"].(string)
	ma, mc := reMPort.FindStringSubmatch(toA), reCrypto.FindStringSubmatch(toA)
	if ma == nil || mc == nil {
		return fmt.Errorf("answer toward A without port or crypto: %q", toA)
	}
	pa, _ := strconv.Atoi(ma[1])
	c.aDst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(pa))
	ks, err := base64.StdEncoding.DecodeString(mc[1])
	if err != nil || len(ks) != 30 {
		return fmt.Errorf("rtpengine's key: %v", err)
	}
	c.arx, err = srtp.CreateContext(ks[:16], ks[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	return err
}

// startRTPEngine runs rtpengine in userspace on loopback, pinned to cpu.
func startRTPEngine(cpu int) (*ngClient, int, func(), error) {
	l, err := listenLo()
	if err != nil {
		return nil, 0, nil, err
	}
	ngAddr := l.LocalAddr().String()
	l.Close()
	args := []string{"rtpengine", "--table=-1", "--interface=127.0.0.1", "--listen-ng=" + ngAddr,
		"--foreground", "--log-stderr", "--log-level=3", "--port-min=40000", "--port-max=49999",
		"--num-threads=1", "--timeout=600", "--delete-delay=0", "--config-file=none"}
	if cpu >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, 0, nil, fmt.Errorf("rtpengine (apt-get install rtpengine-daemon): %w", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	ng, err := dialNG(ngAddr)
	if err != nil {
		stop()
		return nil, 0, nil, err
	}
	// ping answers "pong", not "ok".
	for try := 0; ; try++ {
		_, err = ng.call(map[string]any{"command": "ping"})
		if err != nil && strings.Contains(err.Error(), "pong") {
			err = nil
		}
		if err == nil || try > 20 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		stop()
		return nil, 0, nil, fmt.Errorf("rtpengine ng: %w", err)
	}
	fmt.Fprintf(os.Stderr, "rtpengine running, ng on %s\n", ngAddr)
	return ng, cmd.Process.Pid, stop, nil
}

// load sends a packet every 20 ms each way on every call (and the same
// payloads through rtpengine), the calls spread over 20 one-millisecond
// slots (research/perf.md §1).
func (g *gen) load(calls []*call, stop <-chan struct{}) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, 100) // a 20 ms Opus frame at 40 kbit/s
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	copy(payload, magic[:])
	// Slots are due by the clock, not by ticks: a late tick (the
	// generator's core is busy) catches up on every slot it missed
	// instead of dropping them, as time.Ticker would.
	start := time.Now()
	next := 0 // the next slot due, counted from start
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		due := int(time.Since(start)/time.Millisecond) + 1
		for ; next < due; next++ {
			g.sendSlot(calls, next, payload)
		}
	}
}

// sendSlot sends the packets of slot n (n ms after the start).
func (g *gen) sendSlot(calls []*call, n int, payload []byte) {
	slot, frame := n%20, n/20
	// Transcoding with -tg-frame 60: the Telegram user sends one packet
	// every third slot-frame, counted as the three 20 ms packets the
	// relay makes of it toward the SIP peer.
	per := g.o.tgPer()
	if g.passthrough {
		per = 1
	}
	userSends, userFrame := frame%per == 0, frame/per
	{
		for k := slot; k < len(calls); k += 20 {
			c := calls[k]
			t := g.now()
			counted := g.inWindow(t)
			binary.BigEndian.PutUint64(payload[4:], uint64(t))
			binary.BigEndian.PutUint16(payload[12:], uint16(c.i))
			sipPayload, userPayload := payload, payload
			if !g.passthrough {
				sipPayload, userPayload = g.pcmuFrames[frame%50], g.opusFrames[userFrame%50]
			}
			// Before the sends: the burst may come back before this
			// goroutine runs again.
			if !g.passthrough && frame%50 == 0 {
				c.burstSIP.Store(t)
			}
			if !g.passthrough && userSends && userFrame%50 == 0 {
				c.burstTG.Store(t)
			}
			c.sipSeq++
			if g.sendSRTP(c, c.tx, c.sip, c.sipDst, c.sipPT, c.sipSeq, 0x5151, sipPayload) && counted {
				g.paths[pathSIPToTG].sent.Add(1)
			}
			if userSends {
				c.userSeq++
				pkt := c.plain[:12+len(userPayload)]
				putRTP(pkt, c.userPT, c.userSeq, uint32(c.userSeq)*uint32(960*per), c.userSSR)
				copy(pkt[12:], userPayload)
				if c.user.WriteRTP(pkt) == nil && counted {
					g.paths[pathTGToSIP].sent.Add(uint64(per))
				}
			}

			if c.a != nil {
				c.aSeq++
				if g.sendSRTP(c, c.atx, c.a, c.aDst, 107, c.aSeq, 0xa1a1, payload) && counted {
					g.paths[pathAToB].sent.Add(1)
				}
				c.bSeq++
				pkt := c.plain[:12+len(payload)]
				putRTP(pkt, 107, c.bSeq, uint32(c.bSeq)*960, 0xb1b1)
				copy(pkt[12:], payload)
				if _, err := c.b.WriteToUDPAddrPort(pkt, c.bDst); err == nil && counted {
					g.paths[pathBToA].sent.Add(1)
				}
			}
			pkt := c.plain[:12+len(payload)]
			putRTP(pkt, 107, uint16(frame), 0, 0xd1d1)
			copy(pkt[12:], payload)
			if _, err := c.direct.WriteToUDPAddrPort(pkt, c.direct.LocalAddr().(*net.UDPAddr).AddrPort()); err == nil && counted {
				g.paths[pathDirect].sent.Add(1)
			}
		}
	}
}

func putRTP(p []byte, pt uint8, seq uint16, ts, ssrc uint32) {
	p[0], p[1] = 0x80, pt&0x7f
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
}

func (g *gen) sendSRTP(c *call, tx *srtp.Context, conn *net.UDPConn, dst netip.AddrPort, pt uint8, seq uint16, ssrc uint32, payload []byte) bool {
	pkt := c.plain[:12+len(payload)]
	putRTP(pkt, pt, seq, uint32(seq)*960, ssrc)
	copy(pkt[12:], payload)
	enc, err := tx.EncryptRTP(c.wire[:0], pkt, &c.hdr)
	if err != nil {
		return false
	}
	_, err = conn.WriteToUDPAddrPort(enc, dst)
	return err == nil
}

// arrived counts a received payload on path p by the send time it
// carries (passthrough), or by arrival time (transcoding: the payload is
// the relay's own).
func (g *gen) arrived(p int, payload []byte) {
	if len(payload) >= 14 && [4]byte(payload[:4]) == magic {
		t := int64(binary.BigEndian.Uint64(payload[4:]))
		if g.inWindow(t) {
			g.paths[p].recv.Add(1)
			g.paths[p].lat.add(time.Duration(g.now() - t))
		}
		return
	}
	if !g.passthrough && (p == pathSIPToTG || p == pathTGToSIP) && g.inWindow(g.now()) {
		g.paths[p].recv.Add(1)
	}
}

func isRTCP(b []byte) bool { return len(b) >= 2 && b[1] >= 192 && b[1] <= 223 } // RFC 5761 §4

func (g *gen) recvSIP(c *call) {
	if g.passthrough {
		g.recvSRTP(c.sip, c.rx, pathTGToSIP)
		return
	}
	buf, dec := make([]byte, 1500), make([]byte, 1500)
	pcm := make([]int16, 960)
	var hdr rtp.Header
	for {
		n, _, err := c.sip.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if isRTCP(buf[:n]) {
			continue
		}
		out, err := c.rx.DecryptRTP(dec, buf[:n], &hdr)
		if err != nil {
			continue
		}
		g.arrived(pathTGToSIP, out[hdr.MarshalSize():])
		if k, err := c.sipDec.Decode(out[hdr.MarshalSize():], pcm); err == nil {
			if i := onset(pcm[:k]); i >= 0 {
				g.burstHeard(pathTGToSIP, &c.burstTG, i, g.opusOnset)
			}
		}
	}
}

func (g *gen) recvA(c *call) { g.recvSRTP(c.a, c.arx, pathBToA) }

func (g *gen) recvSRTP(conn *net.UDPConn, rx *srtp.Context, p int) {
	buf, dec := make([]byte, 1500), make([]byte, 1500)
	var hdr rtp.Header
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if isRTCP(buf[:n]) {
			continue
		}
		out, err := rx.DecryptRTP(dec, buf[:n], &hdr)
		if err != nil {
			continue
		}
		g.arrived(p, out[hdr.MarshalSize():])
	}
}

func (g *gen) recvB(c *call)      { g.recvPlain(c.b, pathAToB) }
func (g *gen) recvDirect(c *call) { g.recvPlain(c.direct, pathDirect) }

func (g *gen) recvPlain(conn *net.UDPConn, p int) {
	buf := make([]byte, 1500)
	var hdr rtp.Header
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if isRTCP(buf[:n]) {
			continue
		}
		hl, err := hdr.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		g.arrived(p, buf[hl:n])
	}
}

func (g *gen) recvUser(c *call) {
	buf := make([]byte, 1500)
	pcm := make([]int16, 960)
	var hdr rtp.Header
	for {
		n, err := c.user.ReadRTP(buf)
		if err != nil {
			return
		}
		hl, err := hdr.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		g.arrived(pathSIPToTG, buf[hl:n])
		if c.userDec != nil {
			if k, err := c.userDec.Decode(buf[hl:n], pcm); err == nil {
				if i := onset(pcm[:k]); i >= 0 {
					g.burstHeard(pathSIPToTG, &c.burstSIP, i, 0)
				}
			}
		}
	}
}
