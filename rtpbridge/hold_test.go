package rtpbridge

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestHold: nothing reaches a held leg; when the hold ends the stream
// resumes with the next sequence number, a timestamp that jumped over the
// hold and the marker bit. Holding Telegram is reported as muted.
func TestHold(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sipF, tgF := opusFormats()
		sip, tg := newChanEndpoint(), newChanEndpoint()
		var mu sync.Mutex
		var muted []bool
		b, _ := running(t, Config{SIP: Leg{Endpoint: ep(sip), Format: sipF}, Telegram: Leg{Endpoint: ep(tg), Format: tgF},
			OnTelegramMuted: func(m bool) { mu.Lock(); muted = append(muted, m); mu.Unlock() }})
		tg.rx <- pkt(112, 1, 960, 5, false, []byte{1})
		h1, _ := sip.recv(t)
		b.SetHeld(LegSIP, true)
		for i := uint16(2); i < 50; i++ {
			tg.rx <- pkt(112, i, uint32(i)*960, 5, false, []byte{2})
		}
		// The held packets are read (the Telegram leg must be read
		// continuously) but not sent: wait until the bridge asks for the
		// next one, having handled all 48.
		tg.waitReads(t, 49)
		b.SetHeld(LegSIP, false)
		tg.rx <- pkt(112, 50, 50*960, 5, false, []byte{3})
		h2, _ := sip.recv(t)
		if !bytes.Equal(h2.payload, []byte{3}) {
			t.Fatalf("a packet sent during the hold reached SIP: %x", h2.payload)
		}
		if h2.seq != h1.seq+1 || h2.ts-h1.ts < 960 || !h2.marker {
			t.Fatalf("after hold: seq %d ts %d marker %v (before %d %d)", h2.seq, h2.ts, h2.marker, h1.seq, h1.ts)
		}
		b.SetHeld(LegTelegram, true)
		b.SetHeld(LegTelegram, true)
		b.SetHeld(LegTelegram, false)
		mu.Lock()
		defer mu.Unlock()
		if len(muted) != 2 || !muted[0] || muted[1] {
			t.Fatalf("OnTelegramMuted calls %v", muted)
		}
	})
}

// TestFillSilence: while Telegram is silent, the SIP leg (which needs a
// steady stream) gets Opus silence every 20 ms, and the relayed stream
// continues after it.
func TestFillSilence(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sipF, tgF := opusFormats()
		sip, tg := newChanEndpoint(), newChanEndpoint()
		b, _ := running(t, Config{SIP: Leg{Endpoint: ep(sip), Format: sipF, NeedsPackets: true},
			Telegram: Leg{Endpoint: ep(tg), Format: tgF}, FillAfter: 40 * time.Millisecond})
		var last header
		for i := 0; i < 5; i++ {
			h, _ := sip.recv(t)
			if !bytes.Equal(h.payload, opusSilence) || h.marker != (i == 0) {
				t.Fatalf("fill %d: %x marker %v", i, h.payload, h.marker)
			}
			if i > 0 && (h.seq != last.seq+1 || h.ts != last.ts+960) {
				t.Fatalf("fill %d: seq %d ts %d after %d %d", i, h.seq, h.ts, last.seq, last.ts)
			}
			last = h
		}
		tg.rx <- pkt(112, 7, 7, 5, false, []byte{0xaa})
		for {
			h, _ := sip.recv(t)
			if int16(h.seq-last.seq) != 1 || h.ts-last.ts < 960 {
				t.Fatalf("seq %d ts %d after %d %d", h.seq, h.ts, last.seq, last.ts)
			}
			last = h
			if bytes.Equal(h.payload, []byte{0xaa}) {
				if !h.marker {
					t.Fatal("no marker after fill")
				}
				break
			}
		}
		if b.Stats().SIPToTelegram.PacketsSent != 0 {
			t.Fatal("silence sent toward Telegram, which does not need it")
		}
	})
}

func runErr(t *testing.T, b *Bridge) chan error {
	t.Helper()
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { errc <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		default:
		}
	})
	return errc
}

// TestMediaTimeout: a silent leg ends the bridge with a typed error; hold
// pauses the timeout, and a remote-muted leg does not time out.
func TestMediaTimeout(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sipF, tgF := opusFormats()
		sip, tg := newChanEndpoint(), newChanEndpoint()
		b, err := New(Config{SIP: Leg{Endpoint: ep(sip), Format: sipF}, Telegram: Leg{Endpoint: ep(tg), Format: tgF},
			MediaTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		b.SetHeld(LegTelegram, true)
		b.SetRemoteMuted(LegSIP, true)
		errc := runErr(t, b)
		select {
		case err := <-errc:
			t.Fatalf("timed out while on hold: %v", err)
		case <-time.After(400 * time.Millisecond): // four timeouts on hold
		}
		b.SetHeld(LegTelegram, false)
		select {
		case err := <-errc:
			var mt *MediaTimeoutError
			if !errors.Is(err, ErrMediaTimeout) || !errors.As(err, &mt) || mt.Leg != LegTelegram || mt.Idle < 100*time.Millisecond {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no media timeout")
		}
	})
}

func TestEstimateMOS(t *testing.T) {
	for _, tc := range []struct {
		delay    time.Duration
		loss     float64
		lo, hi   float64
		whatever string
	}{
		{0, 0, 4.40, 4.42, "R 93.2: the G.107 default"},
		{150 * time.Millisecond, 0, 4.3, 4.4, "G.114 delay"},
		{400 * time.Millisecond, 0, 2.9, 3.2, "long delay: R 59"},
		{20 * time.Millisecond, 0.05, 3.8, 4.0, "5 % loss"},
		{20 * time.Millisecond, 0.2, 2.6, 3.0, "20 % loss"},
		{0, 1, 1, 1.6, "all lost"},
	} {
		if m := EstimateMOS(tc.delay, tc.loss, 0, 25.1); m < tc.lo || m > tc.hi {
			t.Errorf("%s: MOS %.2f, want %.2f-%.2f", tc.whatever, m, tc.lo, tc.hi)
		}
	}
}

// TestStats: loss and jitter of the received stream, RTT and MOS.
func TestStats(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sipF, tgF := opusFormats()
		sip, tg := newChanEndpoint(), newChanEndpoint()
		b, stop := running(t, Config{SIP: Leg{Endpoint: ep(sip), Format: sipF}, Telegram: Leg{Endpoint: ep(tg), Format: tgF}})
		b.SetRTT(LegTelegram, 80*time.Millisecond)
		for i := uint16(0); i < 20; i++ {
			if i%5 == 4 {
				continue // 20 % loss
			}
			tg.rx <- pkt(112, i, uint32(i)*960, 5, false, []byte{1, 2, 3})
		}
		for i := 0; i < 16; i++ {
			sip.recv(t)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		st := b.Stats().TelegramToSIP
		if st.Packets != 16 || st.Bytes != 48 || st.Lost != 3 || st.RTT != 80*time.Millisecond {
			t.Fatalf("%+v", st)
		}
		// Sent back to back, the packets' transit varies by up to 20 ms each.
		if st.Jitter <= 0 || st.Jitter > 40*time.Millisecond {
			t.Fatalf("jitter %v", st.Jitter)
		}
		if st.MOS < 2.5 || st.MOS > 3.5 {
			t.Fatalf("MOS %.2f for 15 %% loss", st.MOS)
		}
	})
}
