package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// frameSamples is one 20 ms Opus frame at 48 kHz, what the demo users send
// (a tgcalls receiver decodes any Opus frame size; rtpbridge sends 20 ms too).
const (
	opusRate     = 48000
	frameSamples = opusRate / 50
	framePace    = 20 * time.Millisecond
)

// incoming runs on the engine's handler goroutine for every call that
// rings at a demo user, and acts out the user's behaviour.
func (u *Users) incoming(a *account, c *tgcall.Call) {
	log := c.Logger().With("demo_user", a.entry.Name)
	switch a.entry.Behaviour {
	case Busy:
		// Declined as busy, as a Telegram app's "decline" button does.
		log.Info("demo: declining")
		c.Decline()
	case NoAnswer:
		// Ringing only: Telegram discards it as missed after
		// call_ring_timeout_ms (the engine's own timer is behind that).
		log.Info("demo: letting it ring")
	case Echo, RelayOnly, Tone:
		play := a.entry.Behaviour == Tone
		if !u.spawn(func() { u.serve(c, play) }) {
			c.Decline()
			return
		}
		c.Accept()
	default:
		c.Decline()
	}
}

// serve carries one answered call until it ends: echo sends back what it
// hears, tone plays while it reads (RTCP and DTLS are processed inside
// ReadRTP, so a Conn must be read even when its audio is not wanted).
func (u *Users) serve(c *tgcall.Call, play bool) {
	log := c.Logger()
	select {
	case <-c.Connected():
	case <-c.Done():
		return
	case <-u.ctx.Done():
		c.Hangup()
		return
	}
	conn := c.Conn()
	if !play {
		err := echo(conn)
		log.Debug("demo: echo ended", "err", err)
		return
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		_ = discard(conn) // its error is the call's end, which Done reports
	}()
	err := playTone(u.ctx, conn, u.opts.ToneFrequency, c.Done())
	if err != nil {
		// Closing, or the Conn failed: either way the call is over.
		log.Debug("demo: tone ended", "err", err)
		c.Hangup()
	}
	<-read // ReadRTP fails once the call's media is closed
}

// rtpConn is the media side of a call as the demo users need it
// (tgcall.Conn).
type rtpConn interface {
	ReadRTP(b []byte) (int, error)
	WriteRTP(b []byte) error
	Audio() tgcall.Audio
}

// echo sends every RTP packet it reads back to the peer, re-stamped as our
// own stream (our SSRC and payload type, our sequence numbers, the peer's
// timestamp spacing from our own base) until the call ends.
func echo(conn rtpConn) error {
	in := make([]byte, 1500)
	out := make([]byte, 1500)
	var pkt rtp.Packet
	var (
		started bool
		offset  uint32 // our timestamp = theirs + offset
		seq     uint16
	)
	for {
		n, err := conn.ReadRTP(in)
		if errors.Is(err, io.ErrShortBuffer) {
			continue // an oversized packet was dropped; the call goes on
		}
		if err != nil {
			return err
		}
		if err := pkt.Unmarshal(in[:n]); err != nil || len(pkt.Payload) == 0 {
			continue
		}
		a := conn.Audio()
		if !started {
			started = true
			// Start from arbitrary values of our own, not the peer's
			// (RFC 3550 §5.1: random initial sequence and timestamp).
			offset = uint32(a.SSRC) - pkt.Timestamp
			seq = uint16(a.SSRC >> 16)
		}
		reply := rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         pkt.Marker,
				PayloadType:    a.PayloadType,
				SequenceNumber: seq,
				Timestamp:      pkt.Timestamp + offset,
				SSRC:           a.SSRC,
			},
			Payload: pkt.Payload,
		}
		seq++
		m, err := reply.MarshalTo(out)
		if err != nil {
			continue
		}
		if err := conn.WriteRTP(out[:m]); err != nil {
			return err
		}
	}
}

// discard reads and drops the peer's audio until the call ends.
func discard(conn rtpConn) error {
	b := make([]byte, 1500)
	for {
		if _, err := conn.ReadRTP(b); err != nil && !errors.Is(err, io.ErrShortBuffer) {
			return err
		}
	}
}

// playTone sends a freq Hz tone as 20 ms Opus frames, paced in real time,
// until ctx ends or done closes.
func playTone(ctx context.Context, conn rtpConn, freq float64, done <-chan struct{}) error {
	enc, err := codec.NewOpusEncoder(codec.Options{})
	if err != nil {
		return err
	}
	pcm := make([]int16, frameSamples)
	payload := make([]byte, 1000)
	buf := make([]byte, 1500)
	a := conn.Audio()
	hdr := rtp.Header{Version: 2, PayloadType: a.PayloadType, SSRC: a.SSRC,
		SequenceNumber: uint16(a.SSRC), Timestamp: a.SSRC >> 1}
	tick := time.NewTicker(framePace)
	defer tick.Stop()
	for i := 0; ; i++ {
		audiotest.Tone(pcm, freq, opusRate, i*frameSamples)
		n, err := enc.Encode(pcm, payload)
		if err != nil {
			return fmt.Errorf("demo: opus encode: %w", err)
		}
		pkt := rtp.Packet{Header: hdr, Payload: payload[:n]}
		m, err := pkt.MarshalTo(buf)
		if err != nil {
			return fmt.Errorf("demo: rtp: %w", err)
		}
		if err := conn.WriteRTP(buf[:m]); err != nil {
			return err
		}
		hdr.SequenceNumber++
		hdr.Timestamp += frameSamples
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return nil
		case <-tick.C:
		}
	}
}
