package main

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// checkToneHeard makes the Telegram user play 1 kHz (Opus) and checks the
// PBX hears 1 kHz in the call's SIP audio (PCMU, transcoded by the trunk).
func checkToneHeard(t *testing.T, user *tgcall.Call, m sip.Media) {
	t.Helper()
	const tone = 1000.0
	select {
	case <-user.Connected():
	case <-time.After(20 * time.Second):
		t.Fatal("the Telegram user's media did not connect")
	}
	if m.Endpoint == nil {
		t.Fatal("the PBX's call has no media endpoint")
	}
	dec, err := codec.NewDecoder(m.Codec.Name, int(m.Codec.ClockRate), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := user.Conn()
	sent := make(chan error, 1)
	go func() {
		au := conn.Audio()
		sent <- audiotest.SendOpusTone(ctx, conn, au.SSRC, au.PayloadType, tone, 75, 20*time.Millisecond)
	}()
	// Skip the first 15 packets (the decoder and the bridge settle),
	// then take a quarter of a second.
	want := dec.SampleRate() / 4
	skip := 15
	buf := make([]byte, 1500)
	pcm := make([]int16, 5760)
	var got []int16
	var pkt rtp.Packet
	for len(got) < want {
		n, err := m.Endpoint.ReadRTP(buf)
		if err != nil {
			t.Fatalf("PBX receive: %v", err)
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != m.Codec.PayloadType {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		k, err := dec.Decode(pkt.Payload, pcm)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pcm[:k]...)
	}
	f, prom := audiotest.DominantFrequency(got, dec.SampleRate(), 100, 3500, 2)
	t.Logf("PBX heard %v Hz (prominence %.0f)", f, prom)
	if math.Abs(f-tone) > tone*0.02 || prom < 20 {
		t.Errorf("PBX heard %v Hz (prominence %.1f), want %v Hz", f, prom, tone)
	}
	if err := <-sent; err != nil {
		t.Fatalf("send tone: %v", err)
	}
}
