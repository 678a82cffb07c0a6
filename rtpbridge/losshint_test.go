package rtpbridge

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsip/tgsip/rtpbridge/codec"
)

// The real Opus encoder takes the bridge's loss hint.
var _ LossAdapter = (*codec.OpusEncoder)(nil)

// reportingEndpoint is a Telegram leg whose peer reports a fraction lost.
type reportingEndpoint struct {
	*chanEndpoint
	frac     atomic.Int32 // -1: no report yet
	reported atomic.Int32 // calls to RemoteFractionLost
}

func (e *reportingEndpoint) RemoteFractionLost() (uint8, bool) {
	e.reported.Add(1)
	f := e.frac.Load()
	return uint8(max(f, 0)), f >= 0
}

// hintEncoder records the loss hints it is given.
type hintEncoder struct {
	*linearCodec
	mu    sync.Mutex
	hints []int
}

func (e *hintEncoder) SetPacketLossPercent(p int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hints = append(e.hints, p)
	return nil
}

func (e *hintEncoder) got() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.hints...)
}

// TestLossHintFollowsTelegramReports: the Opus encoder toward Telegram is
// told the loss the Telegram peer reports on our stream (rounded up, never
// under LossFloor), once per change, and nothing before the first report.
func TestLossHintFollowsTelegramReports(t *testing.T) {
	sip := newChanEndpoint()
	tg := &reportingEndpoint{chanEndpoint: newChanEndpoint()}
	tg.frac.Store(-1)
	cfg, _, _ := transcodingConfig(sip, tg)
	enc := &hintEncoder{linearCodec: cfg.Telegram.Encoder.(*linearCodec)}
	cfg.Telegram.Encoder = enc
	cfg.LossFloor = 10
	cfg.FillAfter = 10 * time.Millisecond // the supervisor looks every 10 ms
	b, _ := running(t, cfg)

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: hints %v, stats %+v", what, enc.got(), b.Stats().SIPToTelegram)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// No report yet: the encoder keeps its own setting.
	waitFor("asked before a report", func() bool { return tg.reported.Load() >= 3 })
	if h := enc.got(); len(h) != 0 {
		t.Fatalf("hints %v before any report", h)
	}
	steps := []struct {
		frac uint8
		want []int
	}{
		{64, []int{25}},        // 64/256 = 25 %
		{77, []int{25, 31}},    // 30.08 % rounds up
		{3, []int{25, 31, 10}}, // 1.2 % → 2 %, under the floor
		{0, []int{25, 31, 10}}, // the floor again: no new call
		{255, []int{25, 31, 10, 100}},
	}
	for _, s := range steps {
		tg.frac.Store(int32(s.frac))
		calls := tg.reported.Load()
		waitFor("hint", func() bool { return len(enc.got()) == len(s.want) && tg.reported.Load() >= calls+2 })
		got := enc.got()
		for i := range s.want {
			if got[i] != s.want[i] {
				t.Fatalf("fraction %d/256: hints %v, want %v", s.frac, got, s.want)
			}
		}
		if h := b.Stats().SIPToTelegram.LossHint; h != s.want[len(s.want)-1] {
			t.Fatalf("fraction %d/256: Stats LossHint %d, want %d", s.frac, h, s.want[len(s.want)-1])
		}
	}
}

// TestLossHintNeedsBothSides: without a reporting Telegram leg the
// encoder's hint is left alone.
func TestLossHintNeedsBothSides(t *testing.T) {
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg, _, _ := transcodingConfig(sip, tg)
	enc := &hintEncoder{linearCodec: cfg.Telegram.Encoder.(*linearCodec)}
	cfg.Telegram.Encoder = enc
	cfg.FillAfter = 10 * time.Millisecond
	b, stop := running(t, cfg)
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if h := enc.got(); len(h) != 0 || b.Stats().SIPToTelegram.LossHint != 0 {
		t.Fatalf("hints %v without reports", h)
	}
}

// silkLBRR says whether a 20 ms mono SILK-only Opus packet carries in-band
// FEC (LBRR) data: after the TOC byte (RFC 6716 §3.1) a SILK frame starts
// with its VAD flag and then the LBRR flag, each one range-coded bit of
// probability 1/2 (§4.2.3), so they are the first two bits of the next
// byte. ok is false for any other kind of packet.
func silkLBRR(p []byte) (lbrr, ok bool) {
	if len(p) < 2 {
		return false, false
	}
	config, stereo, code := p[0]>>3, p[0]&4 != 0, p[0]&3
	if config > 11 || config%4 != 1 || stereo || code != 0 {
		return false, false
	}
	return p[1]&0x40 != 0, true
}

// TestDefaultFECOnReport: with the default Opus options and no loss floor
// (config media.opus.packet_loss_percent 0, the default), the encoder
// toward Telegram codes no in-band FEC until the Telegram peer reports
// loss, none while it reports none, and FEC in the active frames once it
// reports 5 %, as WebRTC's Opus encoder in the Telegram apps does
// (codec.DefaultPacketLossPercent). A default of 10, FEC in every frame,
// fails the first step.
func TestDefaultFECOnReport(t *testing.T) {
	sip := newChanEndpoint()
	tg := &reportingEndpoint{chanEndpoint: newChanEndpoint()}
	tg.frac.Store(-1)
	rate := codec.OpusRateFor("PCMU")
	sipDec, _ := codec.NewDecoder("PCMU", 8000, codec.Options{})
	sipEnc, _ := codec.NewEncoder("PCMU", 8000, codec.Options{})
	tgDec, err := codec.NewOpusDecoder(rate)
	if err != nil {
		t.Fatal(err)
	}
	tgEnc, err := codec.NewOpusEncoder(codec.Options{SampleRate: rate})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := running(t, Config{
		SIP:       Leg{Endpoint: sip, Format: Format{Codec: "PCMU", ClockRate: 8000}, Decoder: sipDec, Encoder: sipEnc},
		Telegram:  Leg{Endpoint: tg, Format: Format{Codec: "opus", ClockRate: 48000, PayloadType: 111}, Decoder: tgDec, Encoder: tgEnc},
		FillAfter: 10 * time.Millisecond, // the supervisor looks every 10 ms
	})
	speech := benchSpeech(8000*3, 8000)
	out := make([]byte, 160)
	seq := 0
	// send passes 30 frames of speech and counts the packets toward
	// Telegram that carry FEC data.
	send := func() (fec int) {
		t.Helper()
		for range 30 {
			i := seq % (len(speech) / 160)
			m, _ := sipEnc.Encode(speech[i*160:(i+1)*160], out)
			sip.rx <- pkt(0, uint16(seq), uint32(seq*160), 3, false, out[:m])
			seq++
			h, _ := tg.recv(t)
			lbrr, ok := silkLBRR(h.payload)
			if !ok {
				t.Fatalf("packet %d toward Telegram is not 20 ms mono SILK: TOC %#x", seq, h.payload[0])
			}
			if lbrr {
				fec++
			}
		}
		return fec
	}
	waitHint := func(want int) {
		t.Helper()
		calls := tg.reported.Load()
		deadline := time.Now().Add(5 * time.Second)
		for b.Stats().SIPToTelegram.LossHint != want || tg.reported.Load() < calls+2 {
			if time.Now().After(deadline) {
				t.Fatalf("loss hint %d, want %d", b.Stats().SIPToTelegram.LossHint, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if n := send(); n != 0 {
		t.Fatalf("before any report: %d of 30 packets carry FEC", n)
	}
	tg.frac.Store(0)
	waitHint(0)
	if n := send(); n != 0 {
		t.Fatalf("peer reports no loss: %d of 30 packets carry FEC", n)
	}
	tg.frac.Store(13) // 5.1 %
	waitHint(6)
	// libopus codes LBRR only for frames its VAD finds active enough
	// (silk_LBRR_encode_FLP in silk/float/encode_frame_FLP.c,
	// LBRR_SPEECH_ACTIVITY_THRES): 17 of these 30
	// with libopus 1.3.1.
	if n := send(); n < 10 {
		t.Fatalf("peer reports 5 %% loss: only %d of 30 packets carry FEC", n)
	}
}
