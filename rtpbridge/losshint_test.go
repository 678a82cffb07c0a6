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
