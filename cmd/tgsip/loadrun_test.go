//go:build loadrun && linux

package main

// The bounded load run of issue 13, through the trunk as `tgsip demo`
// builds it (demoAccounts, demoLogin, demo.Start, buildTrunk) with sipp as
// the PBX. It is behind the loadrun build tag: CI never runs it. Run it
// with scripts/loadrun; docs/performance.md has its numbers.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/tgsip/tgsip/b2bua"
	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/internal/demo"
	"github.com/tgsip/tgsip/telegram/emu"

	"github.com/tgsip/tgsip/internal/cputime"
)

// loadEnv reads the run's knobs from the environment.
type loadEnv struct {
	calls   int           // LOADRUN_CALLS: concurrent calls held, and trunk accounts
	hold    time.Duration // LOADRUN_HOLD: how long they are held
	rates   []int         // LOADRUN_RATES: the rising setup rates, calls/s
	seconds int           // LOADRUN_RATE_SECONDS: how long each rate is offered
	minRate float64       // LOADRUN_MIN_SETUPS: setups/s that must be reached without failure
	codec   string        // LOADRUN_CODEC: what the PBX offers and sends, "pcmu" or "opus"
}

func readLoadEnv(t *testing.T) loadEnv {
	t.Helper()
	e := loadEnv{calls: 200, hold: time.Minute, rates: []int{25, 50, 100, 150, 200}, seconds: 4, minRate: 100, codec: "pcmu"}
	if v := os.Getenv("LOADRUN_CODEC"); v != "" {
		if v != "pcmu" && v != "opus" {
			t.Fatalf("LOADRUN_CODEC=%q: pcmu or opus", v)
		}
		e.codec = v
	}
	if v := os.Getenv("LOADRUN_CALLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LOADRUN_CALLS=%q", v)
		}
		e.calls = n
	}
	if v := os.Getenv("LOADRUN_HOLD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LOADRUN_HOLD=%q", v)
		}
		e.hold = d
	}
	if v := os.Getenv("LOADRUN_RATES"); v != "" {
		e.rates = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				t.Fatalf("LOADRUN_RATES=%q", v)
			}
			e.rates = append(e.rates, n)
		}
	}
	if v := os.Getenv("LOADRUN_RATE_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LOADRUN_RATE_SECONDS=%q", v)
		}
		e.seconds = n
	}
	if v := os.Getenv("LOADRUN_MIN_SETUPS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("LOADRUN_MIN_SETUPS=%q", v)
		}
		e.minRate = f
	}
	return e
}

// stepLog records the trunk's call steps (b2bua.Observer).
type stepLog struct {
	mu    sync.Mutex
	calls map[string]*stepCall // by SIP Call-ID
}

type stepCall struct {
	account string
	at      [b2bua.StepDiscard + 1]time.Time
}

func newStepLog() *stepLog { return &stepLog{calls: map[string]*stepCall{}} }

func (l *stepLog) CallStep(e b2bua.StepEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls[e.SIPCallID]
	if c == nil {
		c = &stepCall{}
		l.calls[e.SIPCallID] = c
	}
	if e.Account != "" {
		c.account = e.Account
	}
	if int(e.Step) < len(c.at) {
		c.at[e.Step] = e.At
	}
}

// take returns the calls recorded so far and starts afresh.
func (l *stepLog) take() map[string]*stepCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = map[string]*stepCall{}
	return out
}

// openFDs counts the process's open file descriptors (sockets included).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // ReadDir's own descriptor
}

// labelled runs start with the pprof label part=name on its goroutine, so
// every goroutine it starts (and they start) carries it: the CPU profile
// splits the process into the trunk, the emulator and the demo users, the
// Telegram side's far end (go tool pprof -tags FILE).
func labelled(name string, start func() error) error {
	var err error
	pprof.Do(context.Background(), pprof.Labels("part", name), func(context.Context) { err = start() })
	return err
}

// goroutineStacks counts the process's goroutines by stack.
func goroutineStacks() map[string]int {
	var dump bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
	out := map[string]int{}
	for _, block := range strings.Split(dump.String(), "\n\n") {
		head, stack, ok := strings.Cut(block, "\n")
		if !ok || !strings.Contains(head, " @ ") {
			continue
		}
		n, err := strconv.Atoi(strings.Fields(head)[0])
		if err != nil {
			continue
		}
		// Drop the frame addresses: the stack's functions and lines.
		var frames []string
		for _, l := range strings.Split(stack, "\n") {
			if f := strings.Fields(l); len(f) >= 3 {
				frames = append(frames, f[2]+" "+f[len(f)-1])
			}
		}
		out[strings.Join(frames, "\n")] += n
	}
	return out
}

// settle waits until the process has no more goroutines and descriptors
// than it had idle; it reports how long that took, or fails with the
// stacks that have more goroutines than at idle.
func settle(t *testing.T, what string, goroutines, fds int, idle map[string]int, within time.Duration) {
	t.Helper()
	began := time.Now()
	for {
		runtime.GC()
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds {
			t.Logf("%s: goroutines %d (idle %d), descriptors %d (idle %d), settled after %v", what, g, goroutines, f, fds, time.Since(began).Round(time.Millisecond))
			fmt.Printf("%s: %d goroutines (idle %d), %d descriptors (idle %d), settled after %v\n", what, g, goroutines, f, fds, time.Since(began).Round(time.Millisecond))
			return
		}
		if time.Since(began) > within {
			var extra strings.Builder
			for stack, n := range goroutineStacks() {
				if n > idle[stack] {
					fmt.Fprintf(&extra, "%d more:\n%s\n\n", n-idle[stack], stack)
				}
			}
			listing, _ := exec.Command("ls", "-l", fmt.Sprintf("/proc/%d/fd", os.Getpid())).Output()
			t.Fatalf("%s: leak: goroutines %d (idle %d), descriptors %d (idle %d) after %v\n%s\ndescriptors:\n%s", what, g, goroutines, f, fds, within, extra.String(), listing)
		}
		time.Sleep(500 * time.Millisecond) // polling counts: no event exists for "nothing left"
	}
}

// loadScenario is sipp's PBX: INVITE with a PCMU offer, ACK, a 1 kHz
// µ-law tone streamed for the whole call (sipp's rtp_stream), BYE after
// -d. With LOADRUN_CODEC=opus the offer is Opus alone and the tone is
// Opus RTP played from a pcap (play_pcap_audio; sipp's rtp_stream knows
// only G.711 and G.729), so the trunk passes the media through instead
// of transcoding it. sipp 3.6 streams every call's RTP from its one -mp socket, so each
// offer names that port ([media_port]): the trunk takes RTP only from the
// address the SDP gave, and a call whose offer named another port would
// get none and end at the bridge's media timeout (60 s).
const loadScenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="tgsip load">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "PBX" <sip:1000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:1000@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=pbx 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {{.PT}}
      a=rtpmap:{{.PT}} {{.Rtpmap}}
      a=ptime:20
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "PBX" <sip:1000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:1000@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop>
    <action>
      {{if .Pcap}}<exec play_pcap_audio="{{.Audio}}"/>{{else}}<exec rtp_stream="{{.Audio}},-1,0"/>{{end}}
    </action>
  </nop>
  <pause/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "PBX" <sip:1000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:1000@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
`

// writeScenario writes the sipp scenario and its audio into dir: for
// "pcmu" one second of a 1 kHz tone, G.711 µ-law, looped by rtp_stream;
// for "opus" a pcap of the same tone as Opus RTP, long enough for a call
// of hold (sipp plays a pcap once).
func writeScenario(t *testing.T, dir, codecName string, hold time.Duration) string {
	t.Helper()
	data := struct {
		Audio, Rtpmap string
		PT            int
		Pcap          bool
	}{PT: 0, Rtpmap: "PCMU/8000"}
	switch codecName {
	case "opus":
		data.Audio, data.PT, data.Rtpmap, data.Pcap = filepath.Join(dir, "tone-opus.pcap"), loadOpusPT, "opus/48000/2", true
		writeOpusPcap(t, data.Audio, hold+10*time.Second)
	default:
		data.Audio = filepath.Join(dir, "tone.ulaw")
		pcm := make([]byte, 8000)
		for i := range pcm {
			pcm[i] = linearToULaw(int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000)))
		}
		if err := os.WriteFile(data.Audio, pcm, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := template.Must(template.New("s").Parse(loadScenario)).Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "load.xml")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadOpusPT is the Opus offer's payload type (dynamic, RFC 3551 §3;
// 111 as WebRTC and Telegram use it).
const loadOpusPT = 111

// writeOpusPcap writes a pcap (libpcap format, Ethernet link type) of a
// 1 kHz tone as 20 ms Opus frames in RTP (libopus through
// audiotest.SendOpusTone), one packet every 20 ms for d. sipp replays
// the UDP payloads at the pcap's times from the call's media port to
// the address in the answer, so the packets' addresses and ports here
// are placeholders.
func writeOpusPcap(t *testing.T, path string, d time.Duration) {
	t.Helper()
	w := &pcapWriter{}
	w.header()
	frames := int(d / (20 * time.Millisecond))
	if err := audiotest.SendOpusTone(context.Background(), w, 0x5eed0001, loadOpusPT, 1000, frames, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, w.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pcapWriter collects RTP packets as a pcap file, 20 ms apart.
type pcapWriter struct {
	buf bytes.Buffer
	n   int
}

func (w *pcapWriter) header() {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4) // microsecond timestamps
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(h[20:], 1)     // LINKTYPE_ETHERNET
	w.buf.Write(h[:])
}

// WriteRTP appends one packet: Ethernet, IPv4 (RFC 791, with its header
// checksum), UDP (RFC 768, checksum 0: none) and the RTP packet.
func (w *pcapWriter) WriteRTP(rtp []byte) error {
	const eth, ip, udp = 14, 20, 8
	pkt := make([]byte, eth+ip+udp+len(rtp))
	binary.BigEndian.PutUint16(pkt[12:], 0x0800) // IPv4
	h := pkt[eth : eth+ip]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(ip+udp+len(rtp)))
	h[8], h[9] = 64, 17 // TTL, UDP
	copy(h[12:], []byte{127, 0, 0, 1})
	copy(h[16:], []byte{127, 0, 0, 1})
	var sum uint32
	for i := 0; i < ip; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	u := pkt[eth+ip : eth+ip+udp]
	binary.BigEndian.PutUint16(u[0:], sippMediaPort)
	binary.BigEndian.PutUint16(u[2:], 40000)
	binary.BigEndian.PutUint16(u[4:], uint16(udp+len(rtp)))
	copy(pkt[eth+ip+udp:], rtp)
	at := time.Duration(w.n) * 20 * time.Millisecond
	w.n++
	var rec [16]byte
	binary.LittleEndian.PutUint32(rec[0:], uint32(at/time.Second))
	binary.LittleEndian.PutUint32(rec[4:], uint32(at%time.Second/time.Microsecond))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(pkt)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(pkt)))
	w.buf.Write(rec[:])
	w.buf.Write(pkt)
	return nil
}

// linearToULaw is G.711 µ-law encoding (ITU-T G.711 §2, with the bias of
// 0x84 and the segment search of its reference code).
func linearToULaw(s int16) byte {
	const bias, clip = 0x84, 32635
	x := int(s)
	sign := 0
	if x < 0 {
		x, sign = -x, 0x80
	}
	if x > clip {
		x = clip
	}
	x += bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// sippMediaPort is the first of sipp's RTP ports (a port pair per call
// from there): below Linux's ephemeral range (32768-60999), where the
// in-process Telegram media and everything else on the machine bind, and
// above the sip package tests' 20000-29200.
const sippMediaPort = 30000

// sippRun runs one sipp load against target and returns sipp's CPU time
// (it is part of the generator) and its error (nil when every call
// completed) with the tail of its error log.
func sippRun(t *testing.T, dir, scenario, target string, sippPort, mediaPort int, args ...string) (time.Duration, error) {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	errFile := filepath.Join(dir, fmt.Sprintf("sipp-%d-err.log", time.Now().UnixNano()))
	all := append([]string{
		"-sf", scenario, "-s", "echo", "-i", "127.0.0.1", "-p", strconv.Itoa(sippPort), "-mp", strconv.Itoa(mediaPort),
		"-trace_err", "-error_file", errFile, "-nostdin", "-timeout_error",
	}, args...)
	all = append(all, target)
	cmd := exec.Command(bin, all...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return cpu, fmt.Errorf("sipp %v: %w\n%s", args, err, sippFailures(errFile, out.String()))
	}
	return cpu, nil
}

// sippEntry is what starts each entry of sipp's error log: its date,
// time and Unix time (an entry's last line may end right before it).
var sippEntry = regexp.MustCompile(`\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d+\t\d+\.\d+: `)

// sippFailures summarises a failed sipp run: its scenario table (each
// message's count, retransmissions, timeouts and unexpected messages)
// and the responses its failed calls got, counted by status line. sipp's
// error log also lists every "Dead call" (a retransmission after the call
// ended, not a failure): those are left out.
func sippFailures(errFile, out string) string {
	var b strings.Builder
	var table []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "---------->") || strings.Contains(l, "<----------") || strings.Contains(l, "Pause [") {
			table = append(table, l)
		}
	}
	if len(table) > 8 { // the last screen only
		table = table[len(table)-8:]
	}
	fmt.Fprintf(&b, "scenario (messages, retransmissions, timeouts, unexpected):\n%s\n", strings.Join(table, "\n"))
	raw, _ := os.ReadFile(errFile)
	got := map[string]int{}
	for _, entry := range sippEntry.Split(string(raw), -1) {
		if strings.Contains(entry, "Dead call") || strings.HasPrefix(strings.TrimSpace(entry), "The following events occurred") {
			continue
		}
		if i := strings.Index(entry, "SIP/2.0 "); i >= 0 {
			line, _, _ := strings.Cut(entry[i:], "\n")
			got[strings.TrimSpace(line)]++
		} else if line, _, _ := strings.Cut(entry, "\n"); strings.TrimSpace(line) != "" {
			if len(line) > 200 {
				line = line[:200]
			}
			got[strings.TrimSpace(line)]++
		}
	}
	keys := slices.Sorted(maps.Keys(got))
	for _, k := range keys {
		fmt.Fprintf(&b, "  %d× %s\n", got[k], k)
	}
	return b.String()
}

// delays pairs the trunk's steps with the emulator's records of the same
// calls and returns the four delays a caller hears, per step name.
type delays map[string][]time.Duration

const (
	dInviteRequest = "INVITE → phone.requestCall at the emulator"
	dInviteDial    = "  of which INVITE → Dial (routing, lease, resolve)"
	dRinging180    = "Telegram ringing pushed → 180 sent"
	dRingingLoop   = "  of which ringing seen by the call loop → 180 sent"
	dConnected200  = "Telegram media connected (call loop) → 200 sent"
	dByeDiscard    = "BYE (call loop) → phone.discardCall at the emulator"
)

var delayOrder = []string{dInviteRequest, dInviteDial, dRinging180, dRingingLoop, dConnected200, dByeDiscard}

func pairDelays(calls map[string]*stepCall, n *emu.Network, userOf map[string]int64) delays {
	// The emulator's calls by the trunk account that placed them, in
	// request order; each account carries one call at a time, so the
	// k-th INVITE an account took is its k-th Telegram call from then on.
	byAdmin := map[int64][]emu.CallInfo{}
	for _, c := range n.Calls() {
		byAdmin[c.AdminID] = append(byAdmin[c.AdminID], c)
	}
	type inv struct {
		id string
		c  *stepCall
	}
	byAccount := map[string][]inv{}
	for id, c := range calls {
		if !c.at[b2bua.StepInvite].IsZero() {
			byAccount[c.account] = append(byAccount[c.account], inv{id, c})
		}
	}
	d := delays{}
	add := func(name string, from, to time.Time) {
		if !from.IsZero() && !to.IsZero() {
			d[name] = append(d[name], to.Sub(from))
		}
	}
	for acc, invs := range byAccount {
		slices.SortFunc(invs, func(a, b inv) int { return a.c.at[b2bua.StepInvite].Compare(b.c.at[b2bua.StepInvite]) })
		tgs := byAdmin[userOf[acc]]
		k := 0
		for _, iv := range invs {
			c := iv.c
			for k < len(tgs) && tgs[k].Date.Before(c.at[b2bua.StepInvite]) {
				k++
			}
			add(dInviteDial, c.at[b2bua.StepInvite], c.at[b2bua.StepDial])
			add(dRingingLoop, c.at[b2bua.StepRinging], c.at[b2bua.Step180])
			add(dConnected200, c.at[b2bua.StepConnected], c.at[b2bua.Step200])
			if k == len(tgs) {
				continue
			}
			tc := tgs[k]
			k++
			add(dInviteRequest, c.at[b2bua.StepInvite], tc.Date)
			add(dRinging180, tc.ReceiveDate, c.at[b2bua.Step180])
			if tc.DiscardedBy == tc.AdminID {
				add(dByeDiscard, c.at[b2bua.StepSIPEnded], tc.EndDate)
			}
		}
	}
	return d
}

func percentile(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	s = slices.Clone(s)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// report prints the delays' p50/p99/max and returns the p99 of each of
// the four top-level steps.
func (d delays) report(t *testing.T, phase string) map[string]time.Duration {
	t.Helper()
	p99 := map[string]time.Duration{}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the trunk's delays (under load)\n", phase)
	fmt.Fprintf(&b, "  %-55s %6s %10s %10s %10s\n", "step", "calls", "p50", "p99", "max")
	for _, name := range delayOrder {
		s := d[name]
		fmt.Fprintf(&b, "  %-55s %6d %10v %10v %10v\n", name, len(s),
			percentile(s, 0.50).Round(time.Microsecond), percentile(s, 0.99).Round(time.Microsecond), percentile(s, 1).Round(time.Microsecond))
		if !strings.HasPrefix(name, " ") {
			p99[name] = percentile(s, 0.99)
		}
	}
	fmt.Print(b.String())
	return p99
}

// TestLoadRun: 200 concurrent SIP calls to the demo's echo held 60 s with
// no failed call, all torn down with no goroutine or descriptor of the
// trunk process left over; then a rising setup rate; the trunk's delays
// at each step a caller hears for both, and the CPU per setup of the
// trunk and of the generator apart.
//
// Two processes, as docs/performance.md "Load runs" measures the relay:
// this one is the load generator (the emulator, the demo users — the far
// end of every call, with their own tgcall engines doing DH, ICE and
// DTLS — and sipp), pinned to LOADRUN_GEN_CPU (0); the trunk runs in this
// test binary started again (TestLoadRunTrunk), pinned to
// LOADRUN_TRUNK_CPU (1), and reaches the emulator over loopback as
// `tgsip serve` reaches Telegram. -1 for either leaves it unpinned.
// Knobs: LOADRUN_CALLS, LOADRUN_HOLD, LOADRUN_RATES,
// LOADRUN_RATE_SECONDS, LOADRUN_MIN_SETUPS, LOADRUN_CODEC (pcmu, the
// default, or opus: passthrough), LOADRUN_CPUPROFILE (FILE:
// FILE.gen and FILE.trunk), LOADRUN_TRUNK_PROCS (the trunk's GOMAXPROCS,
// default: its CPUs), LOADRUN_GEN_CPU, LOADRUN_TRUNK_CPU.
func TestLoadRun(t *testing.T) {
	env := readLoadEnv(t)
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	genCPU, trunkCPU := cpuKnob(t, "LOADRUN_GEN_CPU", 0), cpuKnob(t, "LOADRUN_TRUNK_CPU", 1)
	if genCPU >= 0 {
		pinSelf(t, genCPU)
	}
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "generator.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	startG, startFD, startStacks := runtime.NumGoroutine(), openFDs(t), goroutineStacks()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"generator.log", "trunk.log", "trunk.out"} {
				b, _ := os.ReadFile(filepath.Join(dir, name))
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("%s (tail):\n%s", name, b)
			}
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, code := demoConfig("", os.Stderr)
	if c == nil {
		t.Fatalf("demo config: exit %d", code)
	}
	n, err := emu.New(emu.Options{LoginCode: c.Demo.LoginCode, KeepEndedCalls: -1, Logger: log.With("part", "emulator")}) // pairDelays pairs every call
	if err != nil {
		t.Fatal(err)
	}
	if err := labelled("emulator", func() error { return n.Start(ctx) }); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	keyFile := filepath.Join(dir, "emulator.pem")
	if err := os.WriteFile(keyFile, n.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	// The trunk's accounts, one per concurrent call, logged in as the
	// demo logs its accounts in: their session files are the trunk
	// process's to run.
	key := n.ClientOptions().PublicKeys[0].RSA
	accounts := demoAccounts(nil, env.calls, n.Addr(), key, dir)
	began := time.Now()
	if err := demoLogin(ctx, n, accounts, log.With("part", "login")); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("logged in %d trunk accounts in %v\n", env.calls, time.Since(began).Round(time.Millisecond))
	userOf := map[string]int64{}
	for _, a := range accounts {
		u, ok := n.UserByPhone(a.Phone)
		if !ok {
			t.Fatalf("account %s not on the emulator", a.Name)
		}
		userOf[a.Name] = u.ID
	}
	var users *demo.Users
	err = labelled("demo-users", func() (err error) {
		users, err = demo.Start(ctx, n, demo.Options{Logger: log.With("part", "demo")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()

	aliases := demo.Aliases(users.Entries())
	maps.Copy(aliases, c.Routing.SIPToTelegram.Aliases)
	target := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freeSIPPort(t))).String()
	spec := trunkSpec{Dir: dir, Calls: env.calls, EmuAddr: n.Addr().String(), KeyFile: keyFile, SIPListen: target, Aliases: aliases}
	profile := os.Getenv("LOADRUN_CPUPROFILE")
	if profile != "" {
		spec.CPUProfile = profile + ".trunk"
	}
	began = time.Now()
	tp := startTrunkProcess(t, dir, spec, trunkCPU)
	fmt.Printf("trunk process %d (CPU %d, GOMAXPROCS %d) up, accounts online, in %v; %s\n", tp.cmd.Process.Pid, trunkCPU, tp.ready.Procs, time.Since(began).Round(time.Millisecond), tp.ready.Msg)
	fmt.Printf("generator process %d (CPU %d), GOMAXPROCS %d; clock anchor gap %v\n", os.Getpid(), genCPU, runtime.GOMAXPROCS(0), monoAnchor.gap)
	scenario := writeScenario(t, dir, env.codec, env.hold)
	fmt.Printf("the PBX offers %s\n", env.codec)

	// Idle: everything up, no call. A warm-up call on every account
	// first, so that what an account's first call starts or fills (its
	// peer cache, the emulator's sender for its device, shared pools)
	// counts as idle, and the runs below time the steady state.
	if _, err := sippRun(t, dir, scenario, target, freeSIPPort(t), sippMediaPort,
		"-r", "20", "-l", strconv.Itoa(env.calls), "-m", strconv.Itoa(env.calls), "-d", "200", "-timeout", "300s"); err != nil {
		t.Fatalf("warm-up calls: %v", err)
	}
	warm := tp.steps(t)
	used := map[string]bool{}
	for _, sc := range warm {
		used[sc.account] = true
	}
	if len(warm) != env.calls || len(used) != env.calls {
		t.Fatalf("%d warm-up calls on %d accounts, want %d on as many", len(warm), len(used), env.calls)
	}
	// The warm-up call's SIP transactions linger for RFC 3261's timers
	// (Timer J: 64·T1 for the BYE's server transaction over UDP); the
	// idle counts are taken after them.
	t1 := c.SIP.T1
	if t1 == 0 {
		t1 = 500 * time.Millisecond // sip.Config's default
	}
	idleTrunk0, idleGen0, idleWall0 := tp.do(t, trunkCmd{Cmd: "stats"}).CPU, cputime.Process(), time.Now()
	time.Sleep(64*t1 + 2*time.Second)
	// What the processes spend with no call (the accounts' keep-alives,
	// timers): the per-call CPU below is also given above it.
	idleWall := time.Since(idleWall0).Seconds()
	idleTrunk := (tp.do(t, trunkCmd{Cmd: "stats"}).CPU - idleTrunk0).Seconds() / idleWall
	idleGen := (cputime.Process() - idleGen0).Seconds() / idleWall
	fmt.Printf("idle CPU (no call, %.0f s): trunk process %.3f cores, generator %.3f cores\n", idleWall, idleTrunk, idleGen)
	stopProfile := func() {}
	if profile != "" {
		f, err := os.Create(profile + ".gen")
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		stopProfile = func() {
			once.Do(func() {
				pprof.StopCPUProfile()
				f.Close()
			})
		}
		defer stopProfile()
	}
	idle := tp.do(t, trunkCmd{Cmd: "idle"})
	fmt.Printf("idle: trunk process %d goroutines, %d descriptors\n", idle.Goroutines, idle.FDs)

	// 1. env.calls concurrent calls held env.hold.
	{
		gen0, trunk0, wall0 := cputime.Process(), tp.do(t, trunkCmd{Cmd: "stats"}).CPU, time.Now()
		holdMS := strconv.Itoa(int(env.hold.Milliseconds()))
		rate := strconv.Itoa(min(env.calls, 50))
		type result struct {
			sipp time.Duration
			err  error
		}
		done := make(chan result, 1)
		sippPort := freeSIPPort(t)
		go func() {
			cpu, err := sippRun(t, dir, scenario, target, sippPort, sippMediaPort,
				"-r", rate, "-l", strconv.Itoa(env.calls), "-m", strconv.Itoa(env.calls), "-d", holdMS,
				"-timeout", fmt.Sprintf("%ds", int(env.hold.Seconds())+180))
			done <- result{cpu, err}
		}()
		peak, peakSIP := 0, 0
		tick := time.NewTicker(250 * time.Millisecond)
		var res result
	wait:
		for {
			select {
			case res = <-done:
				break wait
			case <-tick.C:
				active := 0
				for _, tc := range n.Calls() {
					if !tc.StartDate.IsZero() && tc.EndDate.IsZero() {
						active++
					}
				}
				peak = max(peak, active)
				peakSIP = max(peakSIP, tp.do(t, trunkCmd{Cmd: "stats"}).SIPCalls)
			}
		}
		tick.Stop()
		wall := time.Since(wall0)
		trunkCPU := tp.do(t, trunkCmd{Cmd: "stats"}).CPU - trunk0
		genCPU := cputime.Process() - gen0 + res.sipp
		fmt.Printf("hold (ramp, hold, teardown) over %v: trunk process CPU %v (%.2f cores), generator CPU %v (%.2f cores, sipp %v of it)\n",
			wall.Round(time.Millisecond), trunkCPU.Round(time.Millisecond), trunkCPU.Seconds()/wall.Seconds(),
			genCPU.Round(time.Millisecond), genCPU.Seconds()/wall.Seconds(), res.sipp.Round(time.Millisecond))
		fmt.Printf("hold: %d calls, peak %d Telegram calls active at once, %d SIP dialogs\n", env.calls, peak, peakSIP)
		if res.err != nil {
			t.Errorf("hold: %v", res.err)
		}
		if peak != env.calls {
			t.Errorf("peak %d concurrent Telegram calls, want %d", peak, env.calls)
		}
		calls := tp.steps(t)
		answered := 0
		for _, sc := range calls {
			if !sc.at[b2bua.Step200].IsZero() {
				answered++
			}
		}
		if answered != env.calls {
			t.Errorf("%d calls answered, want %d", answered, env.calls)
		}
		// Each call lasted until the PBX's BYE: none ended on the trunk's
		// side first (the bridge's media timeout, tgcall's packet timeout:
		// a call whose RTP stopped either way ends so).
		byPBX := 0
		for _, sc := range calls {
			if !sc.at[b2bua.StepDiscard].IsZero() {
				byPBX++
			}
		}
		fmt.Printf("hold: %d of %d calls ended by the PBX's BYE\n", byPBX, env.calls)
		if byPBX != env.calls {
			t.Errorf("%d calls ended by the PBX's BYE, want %d (the others ended on the trunk's side first)", byPBX, env.calls)
		}
		p99 := pairDelays(calls, n, userOf).report(t, fmt.Sprintf("%d concurrent calls held %v", env.calls, env.hold))
		checkP99(t, p99)
		// Everything the calls started in the trunk is gone once their
		// transactions end.
		tp.settle(t, "after the hold", 90*time.Second)
	}

	// 2. A rising setup rate: short calls (0.2 s) at each rate for
	// env.seconds; the setups/s the trunk completed (200 sent) and the
	// first rate with a failed call.
	{
		best := 0.0
		for _, r := range env.rates {
			m := r * env.seconds
			gen0, trunk0, wall0 := cputime.Process(), tp.do(t, trunkCmd{Cmd: "stats"}).CPU, time.Now()
			sippCPU, err := sippRun(t, dir, scenario, target, freeSIPPort(t), sippMediaPort,
				"-r", strconv.Itoa(r), "-l", strconv.Itoa(env.calls), "-m", strconv.Itoa(m), "-d", "200", "-timeout", "120s")
			wall := time.Since(wall0)
			trunkCPU := tp.do(t, trunkCmd{Cmd: "stats"}).CPU - trunk0
			genCPU := cputime.Process() - gen0 + sippCPU
			calls := tp.steps(t)
			var first, last time.Time
			answered := 0
			for _, sc := range calls {
				inv, ok := sc.at[b2bua.StepInvite], sc.at[b2bua.Step200]
				if !inv.IsZero() && (first.IsZero() || inv.Before(first)) {
					first = inv
				}
				if !ok.IsZero() {
					answered++
					if ok.After(last) {
						last = ok
					}
				}
			}
			achieved := 0.0
			if answered > 1 && last.After(first) {
				achieved = float64(answered) / last.Sub(first).Seconds()
			}
			fmt.Printf("rate %d/s offered: %d calls, %d answered, %.1f setups/s completed\n", r, m, answered, achieved)
			if answered > 0 {
				perCall := func(cpu time.Duration, idle float64) (float64, float64) {
					ms := cpu.Seconds() * 1000 / float64(answered)
					return ms, ms - idle*wall.Seconds()*1000/float64(answered)
				}
				tAll, tAbove := perCall(trunkCPU, idleTrunk)
				gAll, gAbove := perCall(genCPU, idleGen)
				fmt.Printf("rate %d/s: over %v trunk process CPU %v (%.2f cores, %.2f ms per call, %.2f above idle), generator %v (%.2f cores, %.2f ms per call, %.2f above idle, sipp %v of it)\n",
					r, wall.Round(time.Millisecond),
					trunkCPU.Round(time.Millisecond), trunkCPU.Seconds()/wall.Seconds(), tAll, tAbove,
					genCPU.Round(time.Millisecond), genCPU.Seconds()/wall.Seconds(), gAll, gAbove,
					sippCPU.Round(time.Millisecond))
			}
			pairDelays(calls, n, userOf).report(t, fmt.Sprintf("setup rate %d/s offered", r))
			tp.settle(t, fmt.Sprintf("after rate %d/s", r), 90*time.Second)
			if err != nil || answered != m {
				fmt.Printf("rate %d/s: failed calls (%d of %d answered): %v\n", r, answered, m, err)
				break
			}
			best = max(best, achieved)
		}
		fmt.Printf("highest setup rate completed without a failed call: %.1f/s (target %.0f/s)\n", best, env.minRate)
		if best < env.minRate {
			t.Errorf("setups/s %.1f < %.0f", best, env.minRate)
		}
	}

	stopProfile()
	tp.close(t)
	users.Close()
	n.Close()
	cancel()
	settle(t, "generator after shutdown", startG, startFD, startStacks, time.Minute)
}

// cpuKnob reads a CPU number from the environment (def when unset, -1:
// not pinned).
func cpuKnob(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
			return -1
		}
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < -1 {
		t.Fatalf("%s=%q", name, v)
	}
	return n
}

// pinSelf pins every thread of this process to cpu (taskset -a: the
// runtime's threads started so far; later ones inherit it) and runs Go
// code on one P, as the relay's runs do (research/perf.md §1). The
// setting stays for the rest of the test binary (a load run is the only
// test it runs).
func pinSelf(t *testing.T, cpu int) {
	t.Helper()
	out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		t.Fatalf("taskset: %v: %s", err, out)
	}
	runtime.GOMAXPROCS(1)
}

// trunkProcess is the trunk's process and its command channel.
type trunkProcess struct {
	cmd     *exec.Cmd
	in      *json.Encoder
	stdin   io.Closer
	replies chan trunkReply
	ready   trunkReply
	done    chan error
	out     *os.File // its stdout and stderr
}

// startTrunkProcess starts this test binary as TestLoadRunTrunk, pinned
// to cpu (-1: not pinned), and waits until its trunk is up with every
// account online.
func startTrunkProcess(t *testing.T, dir string, spec trunkSpec, cpu int) *trunkProcess {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(dir, "trunk-spec.json")
	if err := os.WriteFile(specFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{self, "-test.run=^TestLoadRunTrunk$", "-test.count=1", "-test.timeout=60m"}
	if cpu >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	env := []string{"LOADRUN_TRUNK_SPEC=" + specFile}
	if procs := os.Getenv("LOADRUN_TRUNK_PROCS"); procs != "" {
		// More Ps than CPUs: the kernel time-slices them, so a
		// goroutine in a long computation (a DH exponentiation, ~5 ms)
		// does not hold the others until Go's 10 ms preemption.
		env = append(env, "GOMAXPROCS="+procs)
	}
	for _, e := range os.Environ() {
		// Unless told, the trunk's runtime sizes itself to its one CPU.
		if !strings.HasPrefix(e, "GOMAXPROCS=") && !strings.HasPrefix(e, "LOADRUN_TRUNK_SPEC=") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	outFile, err := os.Create(filepath.Join(dir, "trunk.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = outFile, outFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{w} // descriptor 3
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	tp := &trunkProcess{cmd: cmd, in: json.NewEncoder(stdin), stdin: stdin, replies: make(chan trunkReply), done: make(chan error, 1), out: outFile}
	go func() {
		defer r.Close()
		defer close(tp.replies)
		dec := json.NewDecoder(r)
		for {
			var rep trunkReply
			if err := dec.Decode(&rep); err != nil {
				return
			}
			tp.replies <- rep
		}
	}()
	go func() { tp.done <- cmd.Wait() }()
	t.Cleanup(func() {
		// A run that failed early: end the trunk process (its stdin
		// closed, it drains), by its pid if it does not.
		stdin.Close()
		select {
		case <-tp.done:
		case <-time.After(90 * time.Second):
			_ = cmd.Process.Kill()
			<-tp.done
		}
		for range tp.replies { // the reader's end
		}
		outFile.Close()
	})
	tp.ready = tp.wait(t, 5*time.Minute)
	if !tp.ready.Ready {
		t.Fatalf("trunk process: %s", tp.ready.Err)
	}
	return tp
}

func (tp *trunkProcess) wait(t *testing.T, within time.Duration) trunkReply {
	t.Helper()
	select {
	case rep, ok := <-tp.replies:
		if !ok {
			t.Fatal("trunk process ended (trunk.out has its output)")
		}
		return rep
	case <-time.After(within):
		t.Fatalf("trunk process: no reply within %v", within)
	}
	return trunkReply{}
}

// do sends a command and returns the reply; a reply with an error fails
// the test.
func (tp *trunkProcess) do(t *testing.T, c trunkCmd) trunkReply {
	t.Helper()
	if err := tp.in.Encode(c); err != nil {
		t.Fatalf("trunk process: %v", err)
	}
	rep := tp.wait(t, c.Within+time.Minute)
	if rep.Err != "" {
		t.Fatalf("trunk process, %s: %s", c.Cmd, rep.Err)
	}
	return rep
}

// steps returns the trunk's call steps recorded since the last time, with
// its times as this process's.
func (tp *trunkProcess) steps(t *testing.T) map[string]*stepCall {
	t.Helper()
	out := map[string]*stepCall{}
	for _, mc := range tp.do(t, trunkCmd{Cmd: "steps"}).Steps {
		sc := &stepCall{account: mc.Account}
		for i, n := range mc.At {
			sc.at[i] = fromMono(n)
		}
		out[mc.ID] = sc
	}
	return out
}

// settle waits until the trunk process holds no SIP dialog and is back
// to its idle goroutines and descriptors.
func (tp *trunkProcess) settle(t *testing.T, what string, within time.Duration) {
	t.Helper()
	if err := tp.in.Encode(trunkCmd{Cmd: "settle", What: what, Within: within}); err != nil {
		t.Fatalf("trunk process: %v", err)
	}
	rep := tp.wait(t, within+time.Minute)
	if rep.Err != "" {
		t.Fatal(rep.Err)
	}
	fmt.Println(rep.Msg)
}

// close drains the trunk and waits for its process to end, back to the
// goroutines and descriptors it started with.
func (tp *trunkProcess) close(t *testing.T) {
	t.Helper()
	rep := tp.do(t, trunkCmd{Cmd: "close"})
	fmt.Println(rep.Msg)
	select {
	case err := <-tp.done:
		tp.done <- err // for the cleanup
		if err != nil {
			t.Errorf("trunk process: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("trunk process did not end after close")
	}
	for range tp.replies { // the reader's end
	}
	tp.out.Close()
}

// checkP99 holds the bound: p99 ≤ 5 ms at each of the four steps.
func checkP99(t *testing.T, p99 map[string]time.Duration) {
	t.Helper()
	for name, d := range p99 {
		if d > 5*time.Millisecond {
			t.Errorf("p99 %v > 5 ms: %s", d.Round(time.Microsecond), name)
		}
	}
}
