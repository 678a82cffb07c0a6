package audiotest

import (
	"context"
	"fmt"
	"time"

	"github.com/pion/rtp"
	"gopkg.in/hraban/opus.v2"
)

// OpusRate is the sample rate Telegram's Opus streams run at.
const OpusRate = 48000

// RTPWriter sends plain RTP packets (a Telegram Conn, an RTP socket).
type RTPWriter interface{ WriteRTP(b []byte) error }

// RTPReader receives plain RTP packets.
type RTPReader interface{ ReadRTP(b []byte) (int, error) }

// SendOpusTone sends frames 20 ms Opus frames of a freq Hz tone as RTP with
// ssrc and payload type pt, one frame per pace (0 = as fast as possible),
// until ctx ends or all frames are sent.
func SendOpusTone(ctx context.Context, w RTPWriter, ssrc uint32, pt uint8, freq float64, frames int, pace time.Duration) error {
	enc, err := opus.NewEncoder(OpusRate, 1, opus.AppVoIP)
	if err != nil {
		return err
	}
	const frame = OpusRate / 50
	pcm := make([]int16, frame)
	payload := make([]byte, 1000)
	buf := make([]byte, 1500)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: ssrc, SequenceNumber: 1000, Timestamp: 5000}}
	var tick <-chan time.Time
	if pace > 0 {
		t := time.NewTicker(pace)
		defer t.Stop()
		tick = t.C
	}
	for i := 0; i < frames; i++ {
		Tone(pcm, freq, OpusRate, i*frame)
		n, err := enc.Encode(pcm, payload)
		if err != nil {
			return fmt.Errorf("opus encode: %w", err)
		}
		pkt.Payload = payload[:n]
		m, err := pkt.MarshalTo(buf)
		if err != nil {
			return err
		}
		if err := w.WriteRTP(buf[:m]); err != nil {
			return fmt.Errorf("write rtp: %w", err)
		}
		pkt.SequenceNumber++
		pkt.Timestamp += frame
		if tick != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick:
			}
		}
	}
	return nil
}

// ReceiveOpus reads RTP packets from r, decodes their Opus payloads and
// returns at least samples samples of 48 kHz mono PCM, skipping the first
// skip packets (the encoder's start-up). It returns early with an error when
// r fails; the caller bounds the wait by closing r.
func ReceiveOpus(r RTPReader, samples, skip int) ([]int16, error) {
	dec, err := opus.NewDecoder(OpusRate, 1)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	frame := make([]int16, OpusRate/10) // up to 100 ms (Telegram sends 60 ms frames)
	var pkt rtp.Packet
	var out []int16
	for len(out) < samples {
		n, err := r.ReadRTP(buf)
		if err != nil {
			return out, err
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		m, err := dec.Decode(pkt.Payload, frame)
		if err != nil {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		out = append(out, frame[:m]...)
	}
	return out, nil
}
