package audiotest

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"testing"
)

func TestDominantFrequency(t *testing.T) {
	for _, f := range []float64{440, 1000, 2500} {
		pcm := make([]int16, 4800)
		Tone(pcm, f, 48000, 0)
		got, prom := DominantFrequency(pcm, 48000, 100, 4000, 10)
		if math.Abs(got-f) > 10 || prom < 20 {
			t.Errorf("tone %v Hz: found %v Hz, prominence %.1f", f, got, prom)
		}
	}
	// White noise has no dominant tone.
	r := rand.New(rand.NewSource(1))
	noise := make([]int16, 4800)
	for i := range noise {
		noise[i] = int16(r.Intn(20000) - 10000)
	}
	if _, prom := DominantFrequency(noise, 48000, 100, 4000, 10); prom > 10 {
		t.Errorf("noise prominence %.1f, want < 10", prom)
	}
	if RMS(noise) < 1000 || RMS(make([]int16, 10)) != 0 {
		t.Error("RMS")
	}
}

// pipe is an in-memory RTP path.
type pipe chan []byte

func (p pipe) WriteRTP(b []byte) error { p <- append([]byte(nil), b...); return nil }
func (p pipe) ReadRTP(b []byte) (int, error) {
	pkt, ok := <-p
	if !ok {
		return 0, errClosed
	}
	return copy(b, pkt), nil
}

var errClosed = errors.New("closed")

func TestOpusToneRoundTrip(t *testing.T) {
	p := make(pipe, 100)
	if err := SendOpusTone(context.Background(), p, 1, 111, 700, 50, 0); err != nil {
		t.Fatal(err)
	}
	close(p)
	pcm, err := ReceiveOpus(p, OpusRate/2, 5)
	if err != nil {
		t.Fatal(err)
	}
	f, prom := DominantFrequency(pcm, OpusRate, 100, 4000, 10)
	if math.Abs(f-700) > 10 || prom < 20 {
		t.Fatalf("decoded tone at %v Hz (prominence %.1f), want 700", f, prom)
	}
	// A closed reader ends ReceiveOpus with its error.
	empty := make(pipe)
	close(empty)
	if _, err := ReceiveOpus(empty, 1, 0); !errors.Is(err, errClosed) {
		t.Fatalf("err = %v", err)
	}
}
