package rtpbridge

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// closedEndpoint is a leg that has ended under the bridge: its writes fail
// with the leg's closed error (net.ErrClosed wrapped, as rtpendpoint's and
// telegram/media's are) before Run has been told of the end.
type closedEndpoint struct{ done chan struct{} }

func (e *closedEndpoint) ReadRTP([]byte) (int, error) { <-e.done; return 0, net.ErrClosed }
func (e *closedEndpoint) WriteRTP([]byte) error {
	return fmt.Errorf("leg: endpoint closed: %w", net.ErrClosed)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWriteToClosedLegNotWarned: packets still arriving from one leg
// after the other leg's endpoint closed (a hangup: the bridge learns of it
// a moment later) fail to be written; that is the end of the call, not a
// fault, so it is counted but not logged as a warning. Every hangup of a
// load run logged "rtpbridge: write failed … endpoint closed" at WARN once
// Telegram packets were pushed from the shared port's reader.
func TestWriteToClosedLegNotWarned(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sipF, tgF := opusFormats()
	sip := &closedEndpoint{done: make(chan struct{})}
	tg := newChanEndpoint()
	b, stop := running(t, Config{Logger: log, SIP: Leg{Endpoint: sip, Format: sipF}, Telegram: Leg{Endpoint: tg, Format: tgF}})
	tg.rx <- pkt(112, 1, 960, 0xaaaa, false, []byte{1, 2, 3})
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().TelegramToSIP.WriteErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the write to the closed leg was never tried")
		}
		time.Sleep(time.Millisecond)
	}
	close(sip.done)
	tg.Close()
	_ = stop()
	if s := logs.String(); strings.Contains(s, "level=WARN") {
		t.Errorf("a write to a closed leg was logged as a warning:\n%s", s)
	}
}
