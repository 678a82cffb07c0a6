// Command cpsbench measures how many calls per second the SIP leg carries
// with sipp (Debian's sip-tester) as the load: a real sip.Server on
// loopback UDP (one trunk allowing 127.0.0.1, every call answered 200 with
// the SDP answer computed from the offer, an RTP endpoint per call as in
// production) takes INVITE → 200 → ACK → BYE → 200 calls from sipp at
// rising rates, each for a fixed time. For each rate it prints the calls
// sipp completed and failed, the server's CPU time per wall second and
// per call, and sipp's own CPU, and it stops after the first rate with a
// failed call.
//
// scripts/bench-cps builds it and pins it to one core (taskset); sipp runs
// pinned to the other (-sipp-cpu). Everything stays on 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tgsip/tgsip/sip"

	"github.com/tgsip/tgsip/internal/cputime"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cpsbench:", err)
		os.Exit(1)
	}
}

type options struct {
	rates      []int
	duration   time.Duration
	hold       time.Duration
	scenario   string
	sippCPU    string
	cpuProfile string
	logFile    string
	keepGoing  bool
	keep       string
}

func parseFlags() (options, error) {
	var o options
	rates := flag.String("rates", "200,400,700,1000,1400,2000,2800,4000,5600", "call rates (calls/s) to run, rising")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long sipp places calls at each rate")
	flag.DurationVar(&o.hold, "hold", 100*time.Millisecond, "time between ACK and BYE (sipp -d)")
	flag.StringVar(&o.scenario, "scenario", "internal/cpsbench/uac_cps.xml", "sipp scenario")
	flag.StringVar(&o.sippCPU, "sipp-cpu", "0", "CPU list sipp is pinned to with taskset (empty: not pinned)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&o.logFile, "log", os.DevNull, "server log (text, info level, as tgsip's default)")
	flag.BoolVar(&o.keepGoing, "keep-going", false, "run every rate even after one failed calls")
	flag.StringVar(&o.keep, "keep", "", "keep sipp's statistics and error files in this directory")
	flag.Parse()
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			return o, fmt.Errorf("-rates: %q is not a positive number", f)
		}
		o.rates = append(o.rates, r)
	}
	return o, nil
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("sipp"); err != nil {
		return errors.New("sipp not found (Debian package sip-tester)")
	}
	lf, err := os.OpenFile(o.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()

	lo := netip.MustParseAddr("127.0.0.1")
	srv, err := sip.NewServer(sip.Config{
		Listen:   []sip.ListenConfig{{Transport: sip.UDP, Addr: netip.AddrPortFrom(lo, 0)}},
		Domain:   "tgsip.bench",
		RTPPorts: sip.PortRange{Min: 40000, Max: 49999},
		Trunks:   []sip.TrunkConfig{{Name: "sipp", Allow: []netip.Prefix{netip.PrefixFrom(lo, 32)}}},
	}, slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		return err
	}
	var answerErrs atomic.Int64
	srv.OnCall(func(c *sip.InboundCall) {
		if err := c.Answer(nil); err != nil {
			answerErrs.Add(1)
			return
		}
		<-c.Done()
	})
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	addr, _ := srv.Addr(sip.UDP)

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	dir := o.keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cpsbench"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	fmt.Printf("server %v (UDP), sipp on CPU %q, %v per rate, hold %v\n", addr, o.sippCPU, o.duration, o.hold)
	fmt.Printf("%6s %9s %9s %7s %7s %11s %8s %9s %8s %8s %8s\n", "rate", "attempts", "completed", "failed", "wall", "server CPU", "µs/call", "sipp CPU", "drops", "retrans", "answer")
	for _, rate := range o.rates {
		r, err := runRate(o, dir, addr, rate, srv)
		if err != nil {
			return fmt.Errorf("rate %d: %w", rate, err)
		}
		fmt.Printf("%6d %9d %9d %7d %6.1fs %10.0f%% %8.0f %8.0f%% %8d %8d %6dms\n", rate, r.attempts, r.completed, r.failed,
			r.wall.Seconds(), 100*r.serverCPU.Seconds()/r.wall.Seconds(),
			float64(r.serverCPU.Microseconds())/float64(max(r.completed, 1)), 100*r.sippCPU.Seconds()/r.wall.Seconds(), r.drops,
			r.retrans, r.answer.Milliseconds())
		if r.failed > 0 && !o.keepGoing {
			fmt.Printf("stopped: %d failed calls at %d calls/s\n", r.failed, rate)
			break
		}
	}
	if n := answerErrs.Load(); n > 0 {
		fmt.Printf("Answer failed %d times\n", n)
	}
	fmt.Printf("drops: datagrams the server's SIP socket dropped, its receive buffer full; retrans: sipp's retransmissions; answer: mean INVITE→200 time\n")
	fmt.Printf("server: %d INVITEs refused 503, %d responses not sent, %d malformed\n",
		srv.Overloaded(), srv.Wire().SendFailures.Load(), srv.Wire().Malformed.Load())
	return nil
}

type result struct {
	attempts, completed, failed int
	wall, serverCPU, sippCPU    time.Duration
	errFile                     string
	drops                       int           // datagrams the server's SIP socket dropped (receive buffer full)
	retrans                     int           // sipp's retransmissions
	answer                      time.Duration // mean INVITE→200 time sipp saw
}

// runRate has sipp place rate calls per second for o.duration and waits
// until the server has no call left.
func runRate(o options, dir string, addr netip.AddrPort, rate int, srv *sip.Server) (result, error) {
	calls := rate * int(o.duration/time.Millisecond) / 1000
	sippPort, mediaPort, err := freePorts()
	if err != nil {
		return result{}, err
	}
	stat := filepath.Join(dir, fmt.Sprintf("stat-%d.csv", rate))
	res := result{errFile: filepath.Join(dir, fmt.Sprintf("err-%d.log", rate))}
	timeout := o.duration + 30*time.Second
	args := []string{
		"-sf", o.scenario, "-s", "1000",
		"-i", "127.0.0.1", "-p", strconv.Itoa(sippPort), "-mp", strconv.Itoa(mediaPort),
		"-r", strconv.Itoa(rate), "-rp", "1000", "-m", strconv.Itoa(calls),
		// sipp's default cap on open calls (3 × -d × rate) would slow
		// the offered rate down when the server is late and hide it;
		// every call of the run may be open at once instead.
		"-l", strconv.Itoa(calls),
		"-d", strconv.Itoa(int(o.hold / time.Millisecond)),
		"-recv_timeout", "5000", "-timeout", fmt.Sprintf("%ds", int(timeout.Seconds())), "-timeout_error",
		"-trace_stat", "-stf", stat, "-fd", "60",
		"-trace_err", "-error_file", res.errFile,
		"-nostdin",
		addr.String(),
	}
	bin := "sipp"
	if o.sippCPU != "" {
		args = append([]string{"-c", o.sippCPU, "sipp"}, args...)
		bin = "taskset"
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out

	drops0 := socketDrops(addr)
	cpu0 := cputime.Process()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	werr := cmd.Wait()
	res.wall = time.Since(t0)
	// Calls still ending (BYE answered, media closing) belong to this rate.
	for deadline := time.Now().Add(10 * time.Second); srv.Calls() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	res.serverCPU = cputime.Process() - cpu0
	res.drops = socketDrops(addr) - drops0
	if st := cmd.ProcessState; st != nil {
		res.sippCPU = st.UserTime() + st.SystemTime()
	}
	var code int
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	} else if werr != nil {
		return res, werr
	}
	// sipp exits 0 when every call succeeded, 1 when some failed, and
	// otherwise on its own errors or its global -timeout; its statistics
	// say what happened to the calls in every case but a fatal error.
	var st stats
	if st, err = readStat(stat); err != nil {
		return res, fmt.Errorf("sipp exit %d: %w (sipp said: %s)", code, err, tail(out.Bytes(), 2000))
	}
	res.attempts, res.completed, res.failed, res.retrans, res.answer = st.attempts, st.completed, st.failed, st.retrans, st.answer
	if code != 0 && res.failed == 0 {
		res.failed = max(res.attempts-res.completed, 1)
	}
	return res, nil
}

// stats are the cumulative counters of a sipp run.
type stats struct {
	attempts, completed, failed, retrans int
	answer                               time.Duration
}

// readStat reads the cumulative counters of the last line of sipp's
// -trace_stat file.
func readStat(path string) (stats, error) {
	var st stats
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return st, err
	}
	if len(rows) < 2 {
		return st, errors.New("sipp wrote no statistics")
	}
	head, last := rows[0], rows[len(rows)-1]
	field := func(name string) (string, error) {
		for i, h := range head {
			if h == name && i < len(last) {
				return strings.TrimSpace(last[i]), nil
			}
		}
		return "", fmt.Errorf("no %s column in sipp's statistics", name)
	}
	for _, c := range []struct {
		name string
		to   *int
	}{
		{"OutgoingCall(C)", &st.attempts},
		{"SuccessfulCall(C)", &st.completed},
		{"FailedCall(C)", &st.failed},
		{"Retransmissions(C)", &st.retrans},
	} {
		v, err := field(c.name)
		if err != nil {
			return st, err
		}
		if *c.to, err = strconv.Atoi(v); err != nil {
			return st, fmt.Errorf("sipp's %s: %w", c.name, err)
		}
	}
	// HH:MM:SS:microseconds.
	if v, err := field("ResponseTime1(C)"); err == nil {
		var h, m, sec, us int
		if _, err := fmt.Sscanf(v, "%d:%d:%d:%d", &h, &m, &sec, &us); err == nil {
			st.answer = time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
				time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
		}
	}
	return st, nil
}

// socketDrops is the drop count Linux keeps for the UDP socket bound to
// a (the last column of /proc/net/udp); 0 when it cannot be read.
func socketDrops(a netip.AddrPort) int {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	ip := a.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port())
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == local {
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

// freePorts returns a free UDP port of 127.0.0.1 for sipp's signalling
// and the first of four consecutive free ones for its media (sipp binds
// audio and video RTP/RTCP there even when it sends no media).
func freePorts() (sig, media int, err error) {
	lo := net.IPv4(127, 0, 0, 1)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo})
	if err != nil {
		return 0, 0, err
	}
	sig = c.LocalAddr().(*net.UDPAddr).Port
	defer c.Close()
	for range 100 {
		first, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo})
		if err != nil {
			return 0, 0, err
		}
		p := first.LocalAddr().(*net.UDPAddr).Port
		held := []io.Closer{first}
		ok := p%2 == 0 && p+3 <= 65535
		for i := 1; ok && i < 4; i++ {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo, Port: p + i})
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		for _, h := range held {
			h.Close()
		}
		if ok {
			return sig, p, nil
		}
	}
	return 0, 0, errors.New("no four consecutive free UDP ports for sipp's media")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
