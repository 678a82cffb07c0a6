package tgcall_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Conn.PushRTP delivers the peer's RTP on the call's receiving goroutine
// (the trunk's shared port here) exactly as sent; its stop releases a
// parked ReadRTP with ErrPushStopped, and ReadRTP reads again afterwards.
func TestConnPushRTP(t *testing.T) {
	out, in := connect(t, alice, bob)
	drain(in.Conn())
	co, ci := out.Conn(), in.Conn()
	var got, bad atomic.Int32
	want := func(seq uint16) []byte {
		au := ci.Audio()
		p := make([]byte, 12+8)
		p[0], p[1] = 0x80, au.PayloadType
		binary.BigEndian.PutUint16(p[2:], seq)
		binary.BigEndian.PutUint32(p[4:], uint32(seq)*960)
		binary.BigEndian.PutUint32(p[8:], au.SSRC)
		copy(p[12:], "pushpush")
		return p
	}
	stop := co.PushRTP(func(b []byte) {
		// The peer negotiated header extensions: compare the payload and
		// the fixed header fields.
		if len(b) < 20 || !bytes.HasSuffix(b, []byte("pushpush")) || binary.BigEndian.Uint32(b[8:]) != ci.Audio().SSRC {
			bad.Add(1)
			return
		}
		got.Add(1)
	})
	parked := make(chan error, 1)
	go func() {
		_, err := co.ReadRTP(make([]byte, 1500))
		parked <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	for seq := uint16(1); got.Load() < 50; seq++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d packets pushed, %d bad", got.Load(), bad.Load())
		}
		if err := ci.WriteRTP(want(seq)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if bad.Load() != 0 {
		t.Fatalf("%d packets pushed altered", bad.Load())
	}
	stop()
	select {
	case err := <-parked:
		if !errors.Is(err, tgcall.ErrPushStopped) {
			t.Fatalf("parked ReadRTP: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("parked ReadRTP not released")
	}
	drain(co)
	out.Hangup()
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}
