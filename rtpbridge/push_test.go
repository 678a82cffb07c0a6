package rtpbridge

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// pushChanEndpoint is a chanEndpoint that is a Pusher: a goroutine of its
// own hands what the test feeds through rx to deliver (in a buffer it
// reuses, so a bridge that kept it would see it change), and ReadRTP
// blocks while it pushes, as Pusher says.
type pushChanEndpoint struct {
	*chanEndpoint
	delivered atomic.Int64
	mu        sync.Mutex
	stopped   chan struct{} // of the push in progress, nil before PushRTP
	pushes    int
}

func (e *pushChanEndpoint) PushRTP(deliver func([]byte)) func() {
	stopped, exited := make(chan struct{}), make(chan struct{})
	e.mu.Lock()
	e.stopped = stopped
	e.pushes++
	e.mu.Unlock()
	go func() {
		defer close(exited)
		buf := make([]byte, maxPacket)
		for {
			select {
			case <-e.reads:
			default:
			}
			e.reads <- e.n
			select {
			case p := <-e.rx:
				e.n++
				n := copy(buf, p)
				deliver(buf[:n])
				e.delivered.Add(1)
				clear(buf)
			case <-e.done:
				return
			case <-stopped:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stopped) })
		<-exited
	}
}

func (e *pushChanEndpoint) ReadRTP(b []byte) (int, error) {
	e.mu.Lock()
	s := e.stopped
	e.mu.Unlock()
	if s == nil {
		return e.chanEndpoint.ReadRTP(b)
	}
	select {
	case <-s:
		return 0, ErrPushStopped
	case <-e.done:
		return 0, net.ErrClosed
	}
}

func (e *pushChanEndpoint) pushCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pushes
}

// bothModes runs a test with endpoints read by ReadRTP and with the same
// endpoints as Pushers: ep turns a chanEndpoint into what the bridge gets.
func bothModes(t *testing.T, test func(t *testing.T, ep func(*chanEndpoint) Endpoint)) {
	t.Run("read", func(t *testing.T) {
		test(t, func(e *chanEndpoint) Endpoint { return e })
	})
	t.Run("push", func(t *testing.T) {
		test(t, func(e *chanEndpoint) Endpoint { return &pushChanEndpoint{chanEndpoint: e} })
	})
}

// TestPushUsed: a passthrough bridge takes the packets of a Pusher leg
// through PushRTP (every one delivered, none read), stops it when Run
// ends and then stops waiting in its ReadRTP; a transcoding bridge, and a
// direction that decodes for DTMF detection, keep reading.
func TestPushUsed(t *testing.T) {
	sipF, tgF := opusFormats()
	sip, tg := &pushChanEndpoint{chanEndpoint: newChanEndpoint()}, &pushChanEndpoint{chanEndpoint: newChanEndpoint()}
	_, stop := running(t, Config{SIP: Leg{Endpoint: sip, Format: sipF}, Telegram: Leg{Endpoint: tg, Format: tgF}})
	for i := range 20 {
		tg.rx <- pkt(112, uint16(i), uint32(i)*960, 5, false, []byte{byte(i), 1, 2})
		sip.rx <- pkt(107, uint16(i), uint32(i)*960, 6, false, []byte{byte(i), 3})
	}
	for i := range 20 {
		if h, _ := sip.recv(t); !bytes.Equal(h.payload, []byte{byte(i), 1, 2}) {
			t.Fatalf("to SIP %d: %x", i, h.payload)
		}
		if h, _ := tg.recv(t); !bytes.Equal(h.payload, []byte{byte(i), 3}) {
			t.Fatalf("to Telegram %d: %x", i, h.payload)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if sip.delivered.Load() != 20 || tg.delivered.Load() != 20 || sip.pushCount() != 1 || tg.pushCount() != 1 {
		t.Fatalf("pushed %d and %d", sip.delivered.Load(), tg.delivered.Load())
	}

	pcmu := newChanEndpoint()
	cfg, _, _ := transcodingConfig(&pushChanEndpoint{chanEndpoint: pcmu}, &pushChanEndpoint{chanEndpoint: newChanEndpoint()})
	_, stop = running(t, cfg)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := cfg.SIP.Endpoint.(*pushChanEndpoint).pushCount() + cfg.Telegram.Endpoint.(*pushChanEndpoint).pushCount(); n != 0 {
		t.Fatalf("a transcoding bridge pushed (%d)", n)
	}

	dsip, dtg := &pushChanEndpoint{chanEndpoint: newChanEndpoint()}, &pushChanEndpoint{chanEndpoint: newChanEndpoint()}
	dcfg := passDTMFConfig(dsip, dtg)
	dcfg.DetectDTMF = true
	_, stop = running(t, dcfg)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dsip.pushCount() != 1 || dtg.pushCount() != 0 {
		t.Fatalf("with DTMF detection: SIP pushed %d, Telegram %d (want 1, 0)", dsip.pushCount(), dtg.pushCount())
	}
}

// TestPushDeliverNoAllocs: a pushed packet is relayed without allocating.
func TestPushDeliverNoAllocs(t *testing.T) {
	sipF, tgF := opusFormats()
	sink := &sinkEndpoint{all: make(chan struct{}), done: make(chan struct{}), want: -1}
	br, err := New(Config{SIP: Leg{Endpoint: sink, Format: sipF}, Telegram: Leg{Endpoint: newChanEndpoint(), Format: tgF}})
	if err != nil {
		t.Fatal(err)
	}
	d := br.dirs[LegTelegram]
	p := pktExt(112, 0, 0, 5, make([]byte, 120), []byte{2, 1, 2, 3}, []byte{3, 0, 1})
	var seq uint16
	if n := testing.AllocsPerRun(200, func() {
		seq++
		p[2], p[3] = byte(seq>>8), byte(seq)
		d.deliver(p)
	}); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
	if sink.n < 200 {
		t.Fatalf("%d packets relayed", sink.n)
	}
}
