package account

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Memory per trunk channel: a logged-in Account (gotd client, updates
// manager, call engine) and its connected call. The emulated Telegram runs
// in a child process (this test binary, re-executed), so the process
// measured holds only accounts and calls; both ends of every call are
// Accounts of this process, each with its own call, so the figures are per
// channel (per call end), the account included.
//
//	go test -run '^$' -bench Memory -benchtime 1x ./telegram/account/
//
// ACCOUNT_MEM_N sets the number of channels (default 16, i.e. 8 calls);
// the emulated Telegram lists two reflectors and a TURN relay in every call
// (ACCOUNT_MEM_REFLECTORS=k, ACCOUNT_MEM_TURN=0 change that);
// ACCOUNT_MEM_RELEASE=1 sets media.Transport.ReleaseUnusedRelays (and
// measures 10 s after connecting, once the relays are gone);
// ACCOUNT_MEM_GCS=k runs k collections before each sample instead of one
// (a goroutine stack shrinks by at most half per collection);
// ACCOUNT_MEM_STATS=1 logs (-test.v) each sample's MemStats: live heap
// against heap in use (the difference is fragmentation: partly used
// spans), stacks, and the runtime's own;
// ACCOUNT_MEM_PROFILE=dir writes heap and goroutine profiles taken while
// the calls are connected (and "online-", before any call: `go tool pprof
// -sample_index=alloc_space -base online-heap.pb.gz channel-heap.pb.gz`
// is what connecting the calls allocated); -benchtime Nx repeats the call cycle N times
// (connect all, measure, hang up all, measure) and reports how the RSS
// after hang-up moves from the first cycle to the last.

// memEmuEnv makes the test binary run only the emulated Telegram with the
// number of users it holds, print its address and wait for stdin to close.
const memEmuEnv = "ACCOUNT_MEM_EMULATOR"

// memEmulatorChild is the child process: an emulated Telegram with n users
// +1777000000i, its public key written to the file named by
// ACCOUNT_MEM_KEY, its address on stdout.
func memEmulatorChild() int {
	n, err := strconv.Atoi(os.Getenv(memEmuEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	users := make([]emu.User, n)
	for i := range users {
		users[i] = emu.User{Phone: memPhone(i), FirstName: fmt.Sprint("Channel ", i)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// What Telegram lists in a phoneCall: by default two reflectors and a
	// TURN relay, as the tgcall tests' network; each is a candidate, a
	// socket and goroutines per call end. ACCOUNT_MEM_REFLECTORS=k lists k
	// reflectors (0: none), ACCOUNT_MEM_TURN=0 no TURN relay.
	opts := emu.Options{Reflectors: 2, TURN: os.Getenv("ACCOUNT_MEM_TURN") != "0"}
	if k, err := strconv.Atoi(os.Getenv("ACCOUNT_MEM_REFLECTORS")); err == nil {
		opts.Reflectors = k
		if k == 0 {
			opts.Reflectors = -1
		}
	}
	net, err := emu.ListenAndServe(ctx, opts, users)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer net.Close()
	if err := os.WriteFile(os.Getenv("ACCOUNT_MEM_KEY"), net.PublicKeyPEM(), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("addr %s\n", net.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	return 0
}

func memPhone(i int) string { return fmt.Sprintf("+1777%07d", i) }

// memFleet is the emulator child and n logged-in sessions, made once per
// process (each login costs an auth key, ~1 s of CPU).
type memFleet struct {
	cmd   *exec.Cmd
	stdin io.Closer
	cfgs  []Config
	dir   string
}

var (
	fleetOnce sync.Once
	fleet     *memFleet
	fleetErr  error
)

func memChannels() int {
	if n, err := strconv.Atoi(os.Getenv("ACCOUNT_MEM_N")); err == nil && n >= 2 {
		return n &^ 1
	}
	return 16
}

func getFleet(b *testing.B) *memFleet {
	if os.Getenv("ACCOUNT_MEM_PROFILE") != "" {
		runtime.MemProfileRate = 512 // fine-grained heap profiles
	}
	fleetOnce.Do(func() { fleet, fleetErr = newFleet(memChannels()) })
	if fleetErr != nil {
		b.Fatal(fleetErr)
	}
	return fleet
}

// closeFleet ends the child; TestMain calls it.
func closeFleet() {
	if fleet == nil {
		return
	}
	_ = fleet.stdin.Close()
	_ = fleet.cmd.Wait()
	_ = os.RemoveAll(fleet.dir)
}

func newFleet(n int) (*memFleet, error) {
	dir, err := os.MkdirTemp("", "account-mem")
	if err != nil {
		return nil, err
	}
	f := &memFleet{dir: dir}
	key := filepath.Join(dir, "emu.pem")
	f.cmd = exec.Command(os.Args[0], "-test.run=^$")
	f.cmd.Env = append(os.Environ(), memEmuEnv+"="+strconv.Itoa(n), "ACCOUNT_MEM_KEY="+key)
	f.cmd.Stderr = os.Stderr
	stdin, err := f.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := f.cmd.Start(); err != nil {
		return nil, err
	}
	f.stdin = stdin
	fleet = f // closeFleet ends the child even if the logins fail
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		return nil, fmt.Errorf("emulator child: %q %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	f.cfgs = make([]Config, n)
	errs := make(chan error, n)
	slots := make(chan struct{}, 2) // auth keys are CPU-bound: two at a time
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*30*time.Second)
	defer cancel()
	for i := range f.cfgs {
		f.cfgs[i] = Config{
			Name:          fmt.Sprint("ch", i),
			Phone:         memPhone(i),
			SessionFile:   filepath.Join(dir, fmt.Sprint("ch", i, ".session")),
			APIID:         17349,
			APIHash:       "344583e45741c457fe1862106095a5eb",
			DC:            emu.DC,
			DCAddress:     addr,
			PublicKeyFile: key,
		}
		go func(cfg Config) {
			slots <- struct{}{}
			defer func() { <-slots }()
			_, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()})
			errs <- err
		}(f.cfgs[i])
	}
	for range f.cfgs {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	return f, err
}

// memSample is the process after a full collection.
type memSample struct {
	rss, heap  uint64 // bytes
	stack      uint64 // bytes of goroutine stacks in use (MemStats.StackInuse)
	goroutines int
}

func sampleMem(b *testing.B) memSample {
	for range memGCs() {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if os.Getenv("ACCOUNT_MEM_STATS") == "1" {
		b.Logf("rss %d KiB: heap alloc %d inuse %d retained %d, stacks %d, spans %d, gc meta %d, other %d, buckhash %d",
			vmRSS(b)>>10, ms.HeapAlloc>>10, ms.HeapInuse>>10, (ms.HeapSys-ms.HeapReleased)>>10, ms.StackInuse>>10,
			ms.MSpanInuse>>10, ms.GCSys>>10, ms.OtherSys>>10, ms.BuckHashSys>>10)
	}
	return memSample{rss: vmRSS(b), heap: ms.HeapAlloc, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

func memGCs() int {
	if n, err := strconv.Atoi(os.Getenv("ACCOUNT_MEM_GCS")); err == nil && n >= 1 {
		return n
	}
	return 1
}

// vmRSS is the resident set of this process (/proc/self/status VmRSS).
func vmRSS(b *testing.B) uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// report adds the per-unit difference between two samples as metrics.
func report(b *testing.B, what string, from, to memSample, n int) {
	b.ReportMetric((float64(to.rss)-float64(from.rss))/float64(n)/1024, what+"-KiB-RSS")
	b.ReportMetric((float64(to.heap)-float64(from.heap))/float64(n)/1024, what+"-KiB-heap")
	b.ReportMetric((float64(to.stack)-float64(from.stack))/float64(n)/1024, what+"-KiB-stack")
	b.ReportMetric(float64(to.goroutines-from.goroutines)/float64(n), what+"-goroutines")
}

// fleetRun is the fleet's accounts running, until stop.
type fleetRun struct {
	accs     []*Account
	incoming []chan *tgcall.Call // per answering account
	muxes    []io.Closer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startAccounts runs every account of the fleet and waits until all are
// online. Even accounts place calls with their media on one shared UDP
// port, as a trunk has; odd ones answer on a socket per call, as Telegram
// users have. (Both halves on shared ports would not work: pion/ice's UDP
// mux tells calls apart by the remote address, which would then be the
// same for every call.)
func (f *memFleet) startAccounts(b *testing.B) *fleetRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &fleetRun{cancel: cancel}
	mux, closer, err := media.NewSharedPort("127.0.0.1:0", testLogger())
	if err != nil {
		b.Fatal(err)
	}
	r.muxes = append(r.muxes, closer)
	loopback := func(name string) bool { return name == "lo" }
	transports := [2]*media.Transport{
		{IncludeLoopback: true, InterfaceFilter: loopback, UDPMux: mux, Logger: testLogger(), ReleaseUnusedRelays: memRelease()},
		{IncludeLoopback: true, InterfaceFilter: loopback, Logger: testLogger(), ReleaseUnusedRelays: memRelease()},
	}
	r.incoming = make([]chan *tgcall.Call, len(f.cfgs))
	for i, cfg := range f.cfgs {
		opts := Options{Logger: testLogger()}
		opts.Calls.Transport = transports[i%2]
		if i%2 == 1 {
			in := make(chan *tgcall.Call, 1)
			r.incoming[i] = in
			opts.Calls.OnIncoming = func(c *tgcall.Call) {
				c.Accept()
				in <- c
			}
		}
		acc, err := New(cfg, opts)
		if err != nil {
			b.Fatal(err)
		}
		r.accs = append(r.accs, acc)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := acc.Run(ctx); err != nil {
				b.Errorf("account %s: %v", acc.Name(), err)
			}
		}()
	}
	for _, acc := range r.accs {
		waitOnline(b, acc)
	}
	return r
}

func (r *fleetRun) stop() {
	r.cancel()
	r.wg.Wait()
	for _, acc := range r.accs {
		_ = acc.Close()
	}
	for _, m := range r.muxes {
		_ = m.Close()
	}
}

func waitOnline(b *testing.B, a *Account) {
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		ch := a.Changed()
		st := a.Status()
		if st.State == StateOnline {
			return
		}
		if st.State == StateNeedsLogin || st.State == StateFailed {
			b.Fatalf("account %s: %v (%v)", a.Name(), st.State, st.Err)
		}
		select {
		case <-ch:
		case <-deadline.C:
			b.Fatalf("account %s: state %v (%v), want online", a.Name(), st.State, st.Err)
		}
	}
}

// warmUp runs the accounts once (and with calls, one round of calls), so
// that what the process pays once (package state, pools, the runtime's
// metadata for a heap of this size) is paid before the first sample: the
// figures are then the marginal cost of a channel, which is what N
// channels cost each when N is large.
func (f *memFleet) warmUp(b *testing.B, calls bool) {
	r := f.startAccounts(b)
	defer r.stop()
	if !calls {
		return
	}
	ends, _ := connectAll(b, r, r.resolvePeers(b, f))
	for _, c := range ends {
		c.Hangup()
	}
	for _, c := range ends {
		<-c.Done()
	}
}

// resolvePeers resolves, for every calling account, the account it calls.
func (r *fleetRun) resolvePeers(b *testing.B, f *memFleet) []Peer {
	peers := make([]Peer, len(r.accs))
	for i := 0; i < len(r.accs); i += 2 {
		p, err := r.accs[i].Resolve(context.Background(), f.cfgs[i+1].Phone)
		if err != nil {
			b.Fatal(err)
		}
		peers[i] = p
	}
	return peers
}

// settle lets the goroutines of finished RPCs and state changes end.
func settle() { time.Sleep(500 * time.Millisecond) }

// memRelease is ACCOUNT_MEM_RELEASE=1: the calls release the relays they
// do not use (media.Transport.ReleaseUnusedRelays).
func memRelease() bool { return os.Getenv("ACCOUNT_MEM_RELEASE") == "1" }

// BenchmarkAccountMemory: what one logged-in, online Account costs with no
// call (its gotd client with one MTProto connection, the updates manager,
// the call engine), per account.
func BenchmarkAccountMemory(b *testing.B) {
	f := getFleet(b)
	n := len(f.cfgs)
	f.warmUp(b, false)
	for i := 0; i < b.N; i++ {
		settle()
		before := sampleMem(b)
		r := f.startAccounts(b)
		settle()
		after := sampleMem(b)
		report(b, "account", before, after, n)
		writeProfiles(b, "account")
		r.stop()
	}
}

// BenchmarkChannelMemory: N/2 connected calls between N online Accounts,
// audio sent both ways for a second and read continuously (as the bridge
// does). Reported per channel (one Account and its call end): the call
// alone ("call-"), and the account with its call ("channel-"). Goroutines
// exclude the benchmark's own reader per call end.
func BenchmarkChannelMemory(b *testing.B) {
	f := getFleet(b)
	n := len(f.cfgs)
	f.warmUp(b, true)
	settle()
	base := sampleMem(b)
	r := f.startAccounts(b)
	defer r.stop()
	peers := r.resolvePeers(b, f)
	settle()
	online := sampleMem(b)
	writeProfiles(b, "online")
	var firstIdle, lastIdle memSample
	for it := 0; it < b.N; it++ {
		calls, readers := connectAll(b, r, peers)
		if memRelease() {
			// The relays go 10 s after the direct pair was selected.
			time.Sleep(10 * time.Second)
		}
		settle()
		connected := sampleMem(b)
		connected.goroutines -= readers
		report(b, "call", online, connected, n)
		report(b, "channel", base, connected, n)
		if it == 0 {
			writeProfiles(b, "channel")
		}
		for _, c := range calls {
			c.Hangup()
		}
		for _, c := range calls {
			<-c.Done()
		}
		settle()
		idle := sampleMem(b)
		if b.N > 1 {
			b.Logf("cycle %d: connected RSS %d KiB, after hang-up RSS %d KiB, heap %d KiB, %d goroutines",
				it+1, connected.rss>>10, idle.rss>>10, idle.heap>>10, idle.goroutines)
		}
		if it == 0 {
			firstIdle = idle
			writeProfiles(b, "idle-first")
		}
		lastIdle = idle
	}
	if b.N > 1 {
		writeProfiles(b, "idle-last")
		// Per cycle of n/2 calls, for the whole process.
		cycles := float64(b.N - 1)
		b.ReportMetric((float64(lastIdle.rss)-float64(firstIdle.rss))/1024/cycles, "idle-KiB-RSS-growth/cycle")
		b.ReportMetric((float64(lastIdle.heap)-float64(firstIdle.heap))/1024/cycles, "idle-KiB-heap-growth/cycle")
		b.ReportMetric(float64(lastIdle.goroutines-firstIdle.goroutines), "idle-goroutine-growth")
	}
}

// connectAll places a call from every even account to the next odd one,
// waits until all are connected at both ends, and sends 50 packets of
// audio (20 ms apart) from every end while a reader per end reads. It
// returns every call end and the number of readers still running.
func connectAll(b *testing.B, r *fleetRun, peers []Peer) ([]*tgcall.Call, int) {
	n := len(r.accs)
	ends := make([]*tgcall.Call, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i += 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := r.accs[i].Engine().Dial(ctx, peers[i].Input())
			if err != nil {
				errs <- err
				return
			}
			ends[i] = out
			select {
			case <-out.Connected():
			case <-out.Done():
				errs <- fmt.Errorf("call %d ended: %v", i/2, out.Err())
				return
			case <-ctx.Done():
				errs <- fmt.Errorf("call %d: not connected", i/2)
				return
			}
			var in *tgcall.Call
			select {
			case in = <-r.incoming[i+1]:
			case <-ctx.Done():
				errs <- fmt.Errorf("call %d: no incoming call", i/2)
				return
			}
			ends[i+1] = in
			select {
			case <-in.Connected():
			case <-ctx.Done():
				errs <- fmt.Errorf("call %d: callee not connected", i/2)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	received := make([]atomic.Int64, n)
	for i, c := range ends {
		conn := c.Conn()
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, err := conn.ReadRTP(buf); err != nil {
					return
				}
				received[i].Add(1)
			}
		}()
	}
	var senders sync.WaitGroup
	for _, c := range ends {
		senders.Add(1)
		go func() {
			defer senders.Done()
			sendAudio(c.Conn(), 50)
		}()
	}
	senders.Wait()
	time.Sleep(100 * time.Millisecond)
	for i := range received {
		if received[i].Load() == 0 {
			b.Fatalf("call end %d received no audio", i)
		}
	}
	return ends, n
}

// sendAudio writes count RTP packets (a 60-byte Opus-sized payload) 20 ms
// apart.
func sendAudio(conn *tgcall.Conn, count int) {
	a := conn.Audio()
	pkt := make([]byte, 12+60)
	pkt[0] = 0x80
	pkt[1] = a.PayloadType
	binary.BigEndian.PutUint32(pkt[8:], a.SSRC)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range count {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*960))
		if err := conn.WriteRTP(pkt); err != nil {
			return
		}
		<-tick.C
	}
}

// writeProfiles writes heap (inuse) and goroutine profiles to
// $ACCOUNT_MEM_PROFILE/<name>-{heap.pb.gz,goroutines.txt}.
func writeProfiles(b *testing.B, name string) {
	dir := os.Getenv("ACCOUNT_MEM_PROFILE")
	if dir == "" {
		return
	}
	write := func(file, profile string, debug int) {
		out, err := os.Create(filepath.Join(dir, name+"-"+file))
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		if err := pprof.Lookup(profile).WriteTo(out, debug); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	write("heap.pb.gz", "heap", 0)
	write("goroutines.txt", "goroutine", 2)
}
