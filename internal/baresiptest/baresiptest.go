// Package baresiptest runs baresip (Debian's baresip-core) as a real SIP
// phone for the end-to-end tests of the packages that put real peers
// against the trunk. Its microphone is a WAV file (module aufile) and the
// sndfile filter records what it decodes, so the audio a test sends and
// hears is checked by content after the call. No sound device, DNS server
// or STUN server is involved, and every socket is on 127.0.0.1. It is test
// scaffolding: only _test.go files import it.
package baresiptest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/internal/sipptest"
)

// moduleDirs are where Debian has put baresip's modules.
var moduleDirs = []string{
	"/usr/lib/baresip/modules",
	"/usr/lib/x86_64-linux-gnu/baresip/modules",
	"/usr/lib/aarch64-linux-gnu/baresip/modules",
}

// modules is the smallest set a call needs: G.711, SDES-SRTP, a WAV file
// as audio source, the WAV recorder, accounts and the command set that
// has /dial.
var modules = []string{"g711.so", "srtp.so", "aufile.so", "sndfile.so", "account.so", "menu.so"}

// Rate is the sample rate of baresip's source and recording (G.711).
const Rate = 8000

// Find returns the binary and its module directory. Only a missing binary
// skips: a baresip without the modules is a broken install that CI must
// report.
func Find(t testing.TB) (bin, moduleDir string) {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		t.Skip("baresip not installed (Debian: apt-get install baresip-core)")
	}
	for _, d := range moduleDirs {
		if _, err := os.Stat(filepath.Join(d, "srtp.so")); err == nil {
			moduleDir = d
			break
		}
	}
	if moduleDir == "" {
		t.Fatalf("baresip is at %s but its modules are in none of %v", bin, moduleDirs)
	}
	for _, m := range modules {
		if _, err := os.Stat(filepath.Join(moduleDir, m)); err != nil {
			t.Fatalf("baresip module %s missing: %v", m, err)
		}
	}
	return bin, moduleDir
}

// Options say what the phone sends and whom it dials.
type Options struct {
	// Tone is the frequency baresip's microphone plays, in Hz.
	Tone float64
	// Target is the SIP URI dialled at start (/dial).
	Target string
	// MediaEnc is the account's mediaenc: "srtp-mand" makes the offer
	// RTP/SAVP with a=crypto (SDES only); "" offers plain RTP.
	MediaEnc string
	// RTPPorts is baresip's RTP range, "min-max"; default 31000-31999
	// (below the ephemeral range).
	RTPPorts string
}

// UA is a running baresip.
type UA struct {
	dir    string
	cmd    *exec.Cmd
	out    *syncLog
	exited chan struct{}
}

// Exited is closed when baresip has exited.
func (u *UA) Exited() <-chan struct{} { return u.exited }

// Output is what baresip has printed so far.
func (u *UA) Output() string { return u.out.String() }

// Start writes a config into a temporary folder and starts baresip
// dialling opts.Target. Cleanup kills it if it still runs and prints its
// output when the test failed.
func Start(t testing.TB, opts Options) *UA {
	t.Helper()
	bin, moduleDir := Find(t)
	dir := t.TempDir()
	pcm := make([]int16, 30*Rate) // longer than any call: aufile stops at the end
	audiotest.Tone(pcm, opts.Tone, Rate, 0)
	source := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(source, WAV(pcm, Rate), 0o600); err != nil {
		t.Fatal(err)
	}
	if opts.RTPPorts == "" {
		opts.RTPPorts = "31000-31999"
	}
	sipPort := sipptest.SignalingPort(t)
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
		"rtp_ports " + opts.RTPPorts,
		"rtcp_mux no",
		"rtp_stats no",
		"dns_server 127.0.0.1:53",
		"net_interface 127.0.0.1",
		"module_path " + moduleDir,
		"snd_path " + dir,
	}
	for _, m := range modules {
		kind := "module"
		if m == "account.so" || m == "menu.so" {
			kind = "module_app"
		}
		lines = append(lines, kind+" "+m)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// regint=0: no REGISTER. PCMU only, so the test decodes one codec.
	account := fmt.Sprintf("<sip:baresip@127.0.0.1:%d>;regint=0;ptime=20;audio_codecs=PCMU", sipPort)
	if opts.MediaEnc != "" {
		account += ";mediaenc=" + opts.MediaEnc
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The context bounds baresip's life even if the test forgets it.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-f", dir, "-e", "/dial "+opts.Target)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir) // nothing lands in the real ~/.baresip
	out := &syncLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	u := &UA{dir: dir, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		defer close(u.exited)
		_ = cmd.Wait() // how it ended shows in its output
		cancel()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only when it has already exited
		<-u.exited
		if t.Failed() {
			t.Logf("baresip output:\n%s", out.String())
		}
	})
	return u
}

// WaitOutput waits up to d for baresip to print s.
func (u *UA) WaitOutput(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !strings.Contains(u.out.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-u.exited:
			return strings.Contains(u.out.String(), s)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// Stop ends baresip the polite way (SIGTERM: it hangs up with a BYE and
// closes its modules, so the recorder finishes its WAV header), then a
// second SIGTERM makes it exit at once.
func (u *UA) Stop(t testing.TB) {
	t.Helper()
	for range 2 {
		_ = u.cmd.Process.Signal(syscall.SIGTERM) // fails only when it has already exited
		select {
		case <-u.exited:
			return
		case <-time.After(5 * time.Second):
		}
	}
	t.Fatal("baresip did not exit on SIGTERM")
}

// Recording is what baresip decoded during its one call (the sndfile
// filter's dump-*-dec.wav), after Stop.
func (u *UA) Recording(t testing.TB) []int16 {
	t.Helper()
	recs, _ := filepath.Glob(filepath.Join(u.dir, "dump-*-dec.wav"))
	if len(recs) != 1 {
		t.Fatalf("recordings of decoded audio: %v", recs)
	}
	raw, err := os.ReadFile(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	pcm, rate, err := ParseWAV(raw)
	if err != nil {
		t.Fatal(err)
	}
	if rate != Rate {
		t.Fatalf("recording at %d Hz, want %d", rate, Rate)
	}
	return pcm
}

// WAV is a mono 16-bit PCM WAV of pcm.
func WAV(pcm []int16, rate int) []byte {
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

// ParseWAV reads a mono 16-bit PCM WAV. A data chunk whose size was never
// filled in (a recorder killed mid-call) runs to the end of the file.
func ParseWAV(b []byte) (pcm []int16, rate int, err error) {
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

type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
