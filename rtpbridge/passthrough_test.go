package rtpbridge

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

func opusFormats() (sip, tg Format) {
	sip = Format{Codec: "opus", ClockRate: 48000, PayloadType: 107, Channels: 2}
	tg = Format{Codec: "opus", ClockRate: 48000, PayloadType: 111, RemotePayloadType: 112, SSRC: 0x1111}
	return sip, tg
}

func TestRelayRewrite(t *testing.T) {
	out := outStream{ssrc: 1, seq: 65534, ts: 4294967000, clock: 48000, frame: 960}
	r := relay{out: &out}
	now := time.Duration(0)
	type in struct {
		ssrc SSRC
		seq  uint16
		ts   uint32
	}
	var prevSeq uint16
	var prevTS uint32
	check := func(p in, wantSeqStep uint16, minTS, maxTS uint32) {
		t.Helper()
		now += 20 * time.Millisecond
		h := header{ssrc: p.ssrc, seq: p.seq, ts: p.ts}
		seq, ts := r.rewrite(&h, now)
		if seq-prevSeq != wantSeqStep {
			t.Fatalf("%+v: seq %d after %d", p, seq, prevSeq)
		}
		if d := ts - prevTS; d < minTS || d > maxTS {
			t.Fatalf("%+v: ts step %d", p, d)
		}
		prevSeq, prevTS = seq, ts
	}
	prevSeq, prevTS = out.seq, out.ts
	// Source A wraps its sequence number and timestamp.
	check(in{10, 65534, 4294966336}, 1, 0, 960)
	for i := uint16(1); i < 5; i++ {
		check(in{10, 65534 + i, 4294966336 + uint32(i)*960}, 1, 960, 960)
	}
	// Reordered packet: mapped with the same offsets, stream not moved.
	now += 20 * time.Millisecond
	base := uint32(4294966336)
	h := header{ssrc: 10, seq: 1, ts: base + 3*960}
	if seq, _ := r.rewrite(&h, now); seq != prevSeq-1 {
		t.Fatalf("reordered seq %d, want %d", seq, prevSeq-1)
	}
	// Source B: continues at +1, timestamp advanced by the wall time.
	check(in{20, 40000, 123}, 1, 960, 2*960)
	check(in{20, 40001, 123 + 960}, 1, 960, 960)
	// B restarts far ahead (RFC 3550 A.1 dropout): re-anchored.
	check(in{20, 9000, 5}, 1, 960, 2*960)
	check(in{20, 9001, 965}, 1, 960, 960)
	// A loss inside B shows as a gap, as it should.
	check(in{20, 9003, 965 + 2*960}, 2, 1920, 1920)
}

// TestPassthrough relays both ways through a running Bridge: payloads
// identical, SSRC/sequence/timestamp continuous across an SSRC change and
// wraparound, payload types mapped, Telegram's extensions stripped.
func TestPassthrough(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sipF, tgF := opusFormats()
		sip, tg := newChanEndpoint(), newChanEndpoint()
		b, stop := running(t, Config{SIP: Leg{Endpoint: ep(sip), Format: sipF}, Telegram: Leg{Endpoint: ep(tg), Format: tgF}})
		if !b.Passthrough() {
			t.Fatal("opus on both legs is not a passthrough")
		}
		var sent [][]byte
		seq, ts := uint16(65530), uint32(4294966000)
		for i := 0; i < 30; i++ {
			ssrc := SSRC(0xaaaa)
			if i == 15 {
				seq, ts = 500, 77 // Telegram's stream restarts with a new SSRC
			}
			if i >= 15 {
				ssrc = 0xbbbb
			}
			payload := bytes.Repeat([]byte{byte(i)}, 40+i)
			sent = append(sent, payload)
			// abs-send-time (id 2) and transport-cc (id 3), as tgcalls sends.
			tg.rx <- pktExt(112, seq, ts, ssrc, payload, []byte{2, 1, 2, 3}, []byte{3, 0, byte(i)})
			seq++
			ts += 960
		}
		tg.rx <- pkt(96, 1, 1, 0xaaaa, false, []byte{1}) // unknown payload type
		var last header
		for i := range sent {
			h, raw := sip.recv(t)
			if h.ext != nil || raw[0]&0x10 != 0 {
				t.Fatalf("packet %d carries a header extension to SIP", i)
			}
			if h.pt != 107 || !bytes.Equal(h.payload, sent[i]) {
				t.Fatalf("packet %d: pt %d payload %x", i, h.pt, h.payload)
			}
			if i > 0 {
				if h.ssrc != last.ssrc || h.seq != last.seq+1 {
					t.Fatalf("packet %d: ssrc %x seq %d after %x %d", i, h.ssrc, h.seq, last.ssrc, last.seq)
				}
				if d := h.ts - last.ts; d < 960 || (i != 15 && d != 960) || d > 48000 {
					t.Fatalf("packet %d: timestamp step %d", i, d)
				}
			}
			last = h
		}
		// SIP to Telegram: payload type 107 -> 111, our Telegram SSRC.
		sip.rx <- pkt(107, 9, 9, 0xcccc, true, []byte{0xde, 0xad})
		h, _ := tg.recv(t)
		if h.pt != 111 || h.ssrc != 0x1111 || !h.marker || !bytes.Equal(h.payload, []byte{0xde, 0xad}) {
			t.Fatalf("toward telegram: %+v", h)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		st := b.Stats()
		if st.TelegramToSIP.Packets != 30 || st.TelegramToSIP.PacketsSent != 30 || st.TelegramToSIP.Discarded != 1 || st.SIPToTelegram.PacketsSent != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestPassthroughExtensionMap(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sipF, tgF := opusFormats()
		sipF.Extensions = map[uint8]uint8{1: 4} // ssrc-audio-level: id 1 on Telegram, 4 on SIP
		sip, tg := newChanEndpoint(), newChanEndpoint()
		running(t, Config{SIP: Leg{Endpoint: ep(sip), Format: sipF}, Telegram: Leg{Endpoint: ep(tg), Format: tgF}})
		tg.rx <- pktExt(112, 1, 1, 5, []byte{9, 9}, []byte{2, 1, 2, 3}, []byte{1, 0x8a}, []byte{3, 0, 1})
		h, _ := sip.recv(t)
		it, err := newExtIter(h.extProfile, h.ext)
		if err != nil {
			t.Fatal(err)
		}
		id, val, ok, _ := it.next()
		if !ok || id != 4 || !bytes.Equal(val, []byte{0x8a}) {
			t.Fatalf("extension %d %x %v", id, val, ok)
		}
		if _, _, ok, _ := it.next(); ok {
			t.Fatal("more than the mapped extension passed")
		}
		if !bytes.Equal(h.payload, []byte{9, 9}) {
			t.Fatalf("payload %x", h.payload)
		}
	})
}

func TestRunEndsOnEndpointError(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sipF, tgF := opusFormats()
		sip, tg := newChanEndpoint(), newChanEndpoint()
		b, err := New(Config{SIP: Leg{Endpoint: ep(sip), Format: sipF}, Telegram: Leg{Endpoint: ep(tg), Format: tgF}})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- b.Run(context.Background()) }()
		tg.Close() // the Telegram call ended
		select {
		case err := <-errc:
			var ee *EndpointError
			if !errors.As(err, &ee) || ee.Leg != LegTelegram || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not end")
		}
	})
}

// genEndpoint makes packets on ReadRTP as fast as they are read, n of
// them, then blocks until closed; writes are counted and dropped.
type genEndpoint struct {
	tmpl []byte
	n    int
	seq  uint16
	done chan struct{}
	once sync.Once
}

func (g *genEndpoint) ReadRTP(b []byte) (int, error) {
	if g.n == 0 {
		<-g.done
		return 0, net.ErrClosed
	}
	g.n--
	g.seq++
	n := copy(b, g.tmpl)
	b[2], b[3] = byte(g.seq>>8), byte(g.seq)
	return n, nil
}

func (g *genEndpoint) WriteRTP([]byte) error { return nil }

func (g *genEndpoint) Close() error { g.once.Do(func() { close(g.done) }); return nil }

type sinkEndpoint struct {
	n, want int64
	all     chan struct{}
	done    chan struct{}
	once    sync.Once
}

func (s *sinkEndpoint) ReadRTP([]byte) (int, error) { <-s.done; return 0, net.ErrClosed }
func (s *sinkEndpoint) WriteRTP([]byte) error {
	s.n++
	if s.n == s.want {
		close(s.all)
	}
	return nil
}
func (s *sinkEndpoint) Close() error { s.once.Do(func() { close(s.done) }); return nil }

// BenchmarkPassthroughPacket is the bridge's own cost per relayed packet:
// parse, rewrite, write to an in-memory endpoint (no I/O).
func BenchmarkPassthroughPacket(b *testing.B) {
	sipF, tgF := opusFormats()
	sink := &sinkEndpoint{all: make(chan struct{}), done: make(chan struct{}), want: -1}
	br, err := New(Config{SIP: Leg{Endpoint: sink, Format: sipF}, Telegram: Leg{Endpoint: newChanEndpoint(), Format: tgF}})
	if err != nil {
		b.Fatal(err)
	}
	d := br.dirs[LegTelegram]
	p := pkt(112, 0, 0, 5, false, make([]byte, 120))
	buf := make([]byte, maxPacket)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := copy(buf, p)
		buf[2], buf[3] = byte(i>>8), byte(i)
		d.packet(buf[:n], br.now())
	}
}

// BenchmarkPassthroughRun runs a whole Bridge over in-memory endpoints:
// the direction goroutine reads, relays and writes b.N packets.
func BenchmarkPassthroughRun(b *testing.B) {
	sipF, tgF := opusFormats()
	src := &genEndpoint{tmpl: pktExt(112, 0, 0, 5, make([]byte, 120), []byte{2, 1, 2, 3}, []byte{3, 0, 1}), n: b.N, done: make(chan struct{})}
	sink := &sinkEndpoint{all: make(chan struct{}), done: make(chan struct{}), want: int64(b.N)}
	br, err := New(Config{SIP: Leg{Endpoint: sink, Format: sipF}, Telegram: Leg{Endpoint: src, Format: tgF}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() { errc <- br.Run(ctx) }()
	<-sink.all
	b.StopTimer()
	cancel()
	<-errc
}

// BenchmarkNew reports the memory a Bridge takes (B/op), passthrough and
// transcoding (the latter without its codecs' own state).
func BenchmarkNew(b *testing.B) {
	sipF, tgF := opusFormats()
	e1, e2 := newChanEndpoint(), newChanEndpoint()
	b.Run("passthrough", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := New(Config{SIP: Leg{Endpoint: e1, Format: sipF}, Telegram: Leg{Endpoint: e2, Format: tgF}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("transcoding", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			cfg, _, _ := transcodingConfig(e1, e2)
			if _, err := New(cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
