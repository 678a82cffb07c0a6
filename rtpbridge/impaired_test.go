package rtpbridge

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// TestTranscodeImpaired sends 60 ms frames of a 440 Hz tone from Telegram
// in real time with 20 % loss and 0-60 ms of jitter through a running
// transcoding bridge: the SIP leg gets a continuous 20 ms stream (every
// loss concealed, sequence numbers and timestamps without gaps), the tone
// survives, and no frame is held longer than the jitter buffer's bound.
func TestTranscodeImpaired(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg, _, _ := transcodingConfig(sip, tg)
	cfg.Jitter = JitterConfig{Min: 20 * time.Millisecond, Max: 120 * time.Millisecond}
	b, stop := running(t, cfg)

	const frames = 30
	type send struct {
		i  int
		at time.Duration
	}
	r := rand.New(rand.NewPCG(3, 4))
	var plan []send
	dropped := 0
	for i := 0; i < frames; i++ {
		if i > 1 && i < frames-2 && r.Float64() < 0.2 {
			dropped++
			continue
		}
		plan = append(plan, send{i, time.Duration(i)*60*time.Millisecond + time.Duration(r.Int64N(int64(60*time.Millisecond)))})
	}
	sort.Slice(plan, func(a, c int) bool { return plan[a].at < plan[c].at })
	start := time.Now()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		pcm := make([]int16, 960)
		for _, s := range plan {
			time.Sleep(time.Until(start.Add(s.at))) // pacing the sender, not waiting for an event
			audiotest.Tone(pcm, 440, 16000, s.i*960)
			tg.rx <- pkt(112, uint16(s.i), uint32(s.i*2880), 9, false, l8(pcm))
		}
	}()
	var got []int16
	var last header
	// The last frame may stay behind a gap until a later arrival; all
	// frames before it come out.
	for n := 0; n < 3*(frames-1); n++ {
		h, _ := sip.recv(t)
		if n > 0 && (h.seq != last.seq+1 || h.ts != last.ts+160) {
			t.Fatalf("packet %d: seq %d ts %d after %d %d", n, h.seq, h.ts, last.seq, last.ts)
		}
		// Frame n/3 was due at (n/3)·60 ms and may arrive 60 ms late; the
		// buffer may hold it up to Max plus the gap to the next arrival.
		due := time.Duration(n/3) * 60 * time.Millisecond
		if late := time.Since(start) - due; late > 60*time.Millisecond+cfg.Jitter.Max+2*60*time.Millisecond+100*time.Millisecond {
			t.Fatalf("packet %d came %v after its frame was due", n, late)
		}
		last = h
		got = append(got, pcmOf(h.payload)...)
	}
	<-sent
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats().TelegramToSIP
	if int(st.Concealed) < dropped || int(st.Concealed) > dropped+int(st.Late) {
		t.Fatalf("concealed %d for %d dropped (late %d)", st.Concealed, dropped, st.Late)
	}
	if st.Jitter <= 0 || st.Lost < int64(dropped) {
		t.Fatalf("stats %+v", st)
	}
	f, prom := audiotest.DominantFrequency(got, 8000, 200, 3000, 5)
	if f < 440*0.98 || f > 440*1.02 || prom < 10 {
		t.Fatalf("tone %.0f Hz (prominence %.1f)", f, prom)
	}
	t.Logf("dropped %d, concealed %d, late %d, jitter %v, MOS %.2f", dropped, st.Concealed, st.Late, st.Jitter, st.MOS)
}
