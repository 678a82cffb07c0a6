package sip

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/internal/sipptest"
	"github.com/tgsip/tgsip/sip/sdp"
)

// This file runs a real SDES-SRTP call from baresip (Debian's 1.0.0,
// package baresip-core) into the Server. baresip dials with
// mediaenc=srtp-mand, which makes its offer RTP/SAVP with a=crypto; its
// microphone is a WAV file of a 440 Hz tone (module aufile) and the
// sndfile filter records what it decodes, so our 1000 Hz answer tone can
// be checked by content after the call. No sound device, DNS server or
// STUN server is involved, and every socket is on 127.0.0.1.

const (
	toneFromBaresip = 440.0  // Hz, what baresip sends us
	toneToBaresip   = 1000.0 // Hz, what we send back
	g711Rate        = 8000
)

// baresipModuleDirs are where Debian has put baresip's modules.
var baresipModuleDirs = []string{
	"/usr/lib/baresip/modules",
	"/usr/lib/x86_64-linux-gnu/baresip/modules",
	"/usr/lib/aarch64-linux-gnu/baresip/modules",
}

// baresipModules is the smallest set the call needs: G.711, SDES-SRTP,
// a WAV file as audio source, the WAV recorder, accounts and the command
// set that has /dial.
var baresipModules = []string{"g711.so", "srtp.so", "aufile.so", "sndfile.so", "account.so", "menu.so"}

// findBaresip returns the binary and its module directory. Only a missing
// binary skips: a baresip without the modules the test needs is a broken
// install that CI must report.
func findBaresip(t *testing.T) (bin, modules string) {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		t.Skip("baresip not installed (Debian: apt-get install baresip-core)")
	}
	for _, d := range baresipModuleDirs {
		if _, err := os.Stat(filepath.Join(d, "srtp.so")); err == nil {
			modules = d
			break
		}
	}
	if modules == "" {
		t.Fatalf("baresip is at %s but its modules are in none of %v", bin, baresipModuleDirs)
	}
	for _, m := range baresipModules {
		if _, err := os.Stat(filepath.Join(modules, m)); err != nil {
			t.Fatalf("baresip module %s missing: %v", m, err)
		}
	}
	return bin, modules
}

// baresipConfig is the config file of a throw-away baresip: SIP on one
// loopback port, RTP below the ephemeral range, no audio device (no
// player module is loaded; the sndfile filter records the decoded audio),
// a DNS server on loopback that no lookup ever needs (every URI holds an
// IP) and no STUN/TURN/ICE module.
func baresipConfig(dir, modules string, sipPort int, source string) string {
	lines := []string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", sipPort),
		"call_local_timeout 30",
		"call_max_calls 1",
		"audio_path " + dir,
		"audio_source aufile," + source,
		"ausrc_srate 8000",
		"ausrc_channels 1",
		"auplay_srate 8000",
		"auplay_channels 1",
		"audio_level no",
		"rtp_tos 0",
		"rtp_ports 31000-31999", // between our test ranges and the ephemeral range
		"rtcp_mux no",
		"rtp_stats no",
		"dns_server 127.0.0.1:53",
		"net_interface 127.0.0.1",
		"module_path " + modules,
		"snd_path " + dir,
	}
	for _, m := range baresipModules {
		kind := "module"
		if m == "account.so" || m == "menu.so" {
			kind = "module_app"
		}
		lines = append(lines, kind+" "+m)
	}
	return strings.Join(lines, "\n") + "\n"
}

// baresipUA is a running baresip.
type baresipUA struct {
	cmd    *exec.Cmd
	out    *testLog
	exited chan struct{}
}

// startBaresip writes a config into dir and starts baresip dialling
// target. Cleanup kills it if it still runs.
func startBaresip(t *testing.T, bin, modules, dir, tone, target string) *baresipUA {
	t.Helper()
	sipPort := sipptest.SignalingPort(t)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(baresipConfig(dir, modules, sipPort, tone)), 0o600); err != nil {
		t.Fatal(err)
	}
	// mediaenc=srtp-mand: RTP/SAVP with SDES only (Debian's 1.0.0 also
	// has srtp, the optimistic RTP/AVP form, and srtp-mandf, SAVPF).
	// regint=0: no REGISTER. PCMU only, so the test decodes one codec.
	account := fmt.Sprintf("<sip:baresip@127.0.0.1:%d>;regint=0;mediaenc=srtp-mand;ptime=20;audio_codecs=PCMU\n", sipPort)
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account), 0o600); err != nil {
		t.Fatal(err)
	}
	// The context bounds baresip's life even if the test forgets it.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-f", dir, "-e", "/dial "+target)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir) // nothing lands in the real ~/.baresip
	out := &testLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	b := &baresipUA{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		defer close(b.exited)
		_ = cmd.Wait() // how it ended shows in its output
		cancel()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only when it has already exited
		<-b.exited
		if t.Failed() {
			t.Logf("baresip output:\n%s", out.String())
		}
	})
	return b
}

// stop ends baresip the polite way (SIGTERM: it hangs up and closes its
// modules, so the recorder finishes its WAV header), then a second
// SIGTERM makes it exit at once.
func (b *baresipUA) stop(t *testing.T) {
	t.Helper()
	for range 2 {
		_ = b.cmd.Process.Signal(syscall.SIGTERM) // fails only when it has already exited
		select {
		case <-b.exited:
			return
		case <-time.After(5 * time.Second):
		}
	}
	t.Fatal("baresip did not exit on SIGTERM")
}

func TestBaresipSRTPCall(t *testing.T) {
	bin, modules := findBaresip(t)
	s := newTestServer(t, func(c *Config) {
		c.Media = sdp.DefaultConfig()
		c.Media.SRTP = sdp.SRTPRequired
	})
	got := calls(s, answerAtOnce(t))
	start(t, s)
	ap, _ := s.Addr(UDP)

	dir := t.TempDir()
	tone := filepath.Join(dir, "tone.wav")
	pcm := make([]int16, 20*g711Rate) // longer than the call: aufile stops at the end
	audiotest.Tone(pcm, toneFromBaresip, g711Rate, 0)
	if err := os.WriteFile(tone, wavFile(pcm, g711Rate), 0o600); err != nil {
		t.Fatal(err)
	}
	ua := startBaresip(t, bin, modules, dir, tone, fmt.Sprintf("sip:1000@%s", ap))

	var c *InboundCall
	select {
	case c = <-got:
	case <-ua.exited:
		t.Fatal("baresip exited before calling")
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for baresip's call")
	}
	// The SDP must really be SDES: baresip offered RTP/SAVP with a=crypto
	// and we answered the same. (Only facts are printed: the lines hold
	// keys.)
	offer := string(c.Offer)
	if !strings.Contains(offer, " RTP/SAVP ") || !strings.Contains(offer, "\na=crypto:") {
		t.Fatalf("baresip's offer is not SDES: RTP/SAVP %v, a=crypto %v",
			strings.Contains(offer, " RTP/SAVP "), strings.Contains(offer, "\na=crypto:"))
	}
	answer := string(c.localSDP)
	if !strings.Contains(answer, " RTP/SAVP ") || !strings.Contains(answer, "\na=crypto:") {
		t.Fatalf("our answer is not SDES: RTP/SAVP %v, a=crypto %v",
			strings.Contains(answer, " RTP/SAVP "), strings.Contains(answer, "\na=crypto:"))
	}
	waitFor(t, c.Confirmed(), "ACK from baresip")
	m := c.Media()
	if m.SRTP == nil {
		t.Fatal("no SRTP keys negotiated")
	}
	if m.Codec.Name != "PCMU" {
		t.Fatalf("codec %q, want PCMU", m.Codec.Name)
	}

	if m.Endpoint == nil {
		t.Fatal("no RTP endpoint")
	}
	// One goroutine per direction, as the media bridge will have, both
	// through the endpoint: it decrypts and authenticates what baresip
	// sends (a packet that fails is dropped, so a tone read here came
	// under the negotiated keys) and protects what we send.
	rx := goReadTone(m.Endpoint, m.Codec.PayloadType, 10, 50)
	txDone := make(chan error, 1)
	go func() { txDone <- sendTone(m.Endpoint, m.Codec.PayloadType, toneToBaresip, 100, true) }()
	r := waitFor(t, rx, "baresip's audio")
	if err := waitFor(t, txDone, "our audio to be sent"); err != nil {
		t.Fatal(err)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	bf, bprom := audiotest.DominantFrequency(r.pcm, g711Rate, 100, 3500, 10)
	t.Logf("from baresip: %d samples, dominant %v Hz (prominence %.0f)", len(r.pcm), bf, bprom)
	if bf != toneFromBaresip || bprom < 20 {
		t.Errorf("baresip's audio: dominant %v Hz (prominence %.1f), want %v Hz", bf, bprom, toneFromBaresip)
	}
	st := m.Endpoint.Stats()
	t.Logf("endpoint stats: %+v", st)
	if st.SRTPProfile != "SRTP_AES128_CM_HMAC_SHA1_80" || st.Received.AuthFailures != 0 || st.Sent.Packets != 100 {
		t.Errorf("endpoint: profile %q, %d authentication failures, %d packets sent", st.SRTPProfile, st.Received.AuthFailures, st.Sent.Packets)
	}

	c.Hangup(Reason{Protocol: "Q.850", Cause: 16, Text: "Normal call clearing"})
	if ce := endOf(t, c); ce.Cause != CauseNormal || ce.Remote {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
	checkEndpointClosed(t, m.Endpoint)
	ua.stop(t)

	out := ua.out.String()
	if !strings.Contains(out, "SRTP is Enabled") {
		t.Error("baresip did not report SRTP as enabled")
	}
	recs, _ := filepath.Glob(filepath.Join(dir, "dump-*-dec.wav"))
	if len(recs) != 1 {
		t.Fatalf("recordings of decoded audio: %v", recs)
	}
	raw, err := os.ReadFile(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	rec, rate, err := parseWAV(raw)
	if err != nil {
		t.Fatal(err)
	}
	if rate != g711Rate || len(rec) < g711Rate {
		t.Fatalf("recording: %d Hz, %d samples", rate, len(rec))
	}
	f, prom := audiotest.DominantFrequency(rec, rate, 100, 3500, 10)
	t.Logf("baresip recorded %d samples, dominant %v Hz (prominence %.0f, RMS %.0f)", len(rec), f, prom, audiotest.RMS(rec))
	if f != toneToBaresip || prom < 20 {
		t.Errorf("baresip heard: dominant %v Hz (prominence %.1f), want %v Hz", f, prom, toneToBaresip)
	}
}

// ulawEncode is G.711 µ-law (ITU-T G.711 §2, the bias-and-segment form).
func ulawEncode(s int16) byte {
	const bias, clip = 0x84, 32635
	x, sign := int(s), 0
	if x < 0 {
		x, sign = -x, 0x80
	}
	x = min(x, clip) + bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// ulawDecode inverts ulawEncode.
func ulawDecode(u byte) int16 {
	u = ^u
	exp := int(u>>4) & 7
	x := ((int(u&0x0f)<<3)+0x84)<<exp - 0x84
	if u&0x80 != 0 {
		return int16(-x)
	}
	return int16(x)
}

// wavFile is a mono 16-bit PCM WAV of pcm.
func wavFile(pcm []int16, rate int) []byte {
	var b bytes.Buffer
	data := uint32(2 * len(pcm))
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, 36+data) //nolint:errcheck // bytes.Buffer does not fail
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, struct { //nolint:errcheck // bytes.Buffer does not fail
		Size                      uint32
		Format, Channels          uint16
		Rate, ByteRate            uint32
		BlockAlign, BitsPerSample uint16
	}{16, 1, 1, uint32(rate), uint32(2 * rate), 2, 16})
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, data) //nolint:errcheck // bytes.Buffer does not fail
	binary.Write(&b, binary.LittleEndian, pcm)  //nolint:errcheck // bytes.Buffer does not fail
	return b.Bytes()
}

// parseWAV reads a mono 16-bit PCM WAV. A data chunk whose size was never
// filled in (a recorder killed mid-call) runs to the end of the file.
func parseWAV(b []byte) (pcm []int16, rate int, err error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE file")
	}
	b = b[12:]
	fmtSeen := false
	for len(b) >= 8 {
		id, size := string(b[:4]), int(binary.LittleEndian.Uint32(b[4:8]))
		b = b[8:]
		switch id {
		case "fmt ":
			if size < 16 || len(b) < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			format, channels := binary.LittleEndian.Uint16(b[0:2]), binary.LittleEndian.Uint16(b[2:4])
			bits := binary.LittleEndian.Uint16(b[14:16])
			if format != 1 || channels != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("WAV format %d, %d channels, %d bits: want PCM mono 16-bit", format, channels, bits)
			}
			rate = int(binary.LittleEndian.Uint32(b[4:8]))
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, 0, errors.New("data before fmt")
			}
			if size == 0 || size > len(b) {
				size = len(b)
			}
			pcm = make([]int16, size/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return pcm, rate, nil
		}
		size += size & 1 // RIFF chunks are padded to even sizes
		if size > len(b) {
			break
		}
		b = b[size:]
	}
	return nil, 0, errors.New("no data chunk")
}

func TestG711ULawRoundTrip(t *testing.T) {
	for _, x := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32767, -32768} {
		y := ulawDecode(ulawEncode(x))
		// µ-law keeps about 4 bits of mantissa: the error grows with
		// the magnitude, up to 1/16 of it plus the first step.
		if d := math.Abs(float64(x) - float64(y)); d > math.Abs(float64(x))/16+8 {
			t.Errorf("%d -> %d", x, y)
		}
	}
	// Known code points of G.711 Table 2: 0xff is +0, 0x80 is the largest.
	if ulawEncode(0) != 0xff || ulawDecode(0x80) != 32124 {
		t.Errorf("encode(0)=%#x decode(0x80)=%d", ulawEncode(0), ulawDecode(0x80))
	}
}
