package b2bua

import (
	"testing"
	"time"

	"github.com/tgsip/tgsip/rtpbridge"
	"github.com/tgsip/tgsip/sip/sdp"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

func TestSIPFormat(t *testing.T) {
	opus := sdp.Codec{Name: sdp.Opus, PayloadType: 107, ClockRate: 48000, Channels: 2}
	pcmu := sdp.Codec{Name: sdp.PCMU, PayloadType: 0, ClockRate: 8000, Channels: 1}
	te := func(pt uint8, rate uint32) *sdp.Codec {
		return &sdp.Codec{Name: sdp.TelephoneEvent, PayloadType: pt, ClockRate: rate, Channels: 1}
	}
	for _, tt := range []struct {
		name string
		neg  sdp.Negotiated
		want rtpbridge.Format
		err  bool
	}{
		{"opus with events", sdp.Negotiated{Codec: opus, DTMF: te(101, 48000), PTime: 20},
			rtpbridge.Format{Codec: "opus", ClockRate: 48000, PayloadType: 107, Channels: 2, PTime: 20 * time.Millisecond, DTMFPayloadType: 101}, false},
		{"PCMU 30 ms", sdp.Negotiated{Codec: pcmu, DTMF: te(101, 8000), PTime: 30},
			rtpbridge.Format{Codec: "PCMU", ClockRate: 8000, PayloadType: 0, Channels: 1, PTime: 30 * time.Millisecond, DTMFPayloadType: 101}, false},
		{"events at another clock left out", sdp.Negotiated{Codec: opus, DTMF: te(101, 8000), PTime: 20},
			rtpbridge.Format{Codec: "opus", ClockRate: 48000, PayloadType: 107, Channels: 2, PTime: 20 * time.Millisecond}, false},
		{"no ptime", sdp.Negotiated{Codec: pcmu},
			rtpbridge.Format{Codec: "PCMU", ClockRate: 8000, Channels: 1, PTime: 20 * time.Millisecond}, false},
		{"ptime 7 ms", sdp.Negotiated{Codec: pcmu, PTime: 7},
			rtpbridge.Format{Codec: "PCMU", ClockRate: 8000, Channels: 1, PTime: 20 * time.Millisecond}, false},
		{"ptime 200 ms", sdp.Negotiated{Codec: pcmu, PTime: 200},
			rtpbridge.Format{Codec: "PCMU", ClockRate: 8000, Channels: 1, PTime: 20 * time.Millisecond}, false},
		{"G722 lower case", sdp.Negotiated{Codec: sdp.Codec{Name: "g722", PayloadType: 9, ClockRate: 8000, Channels: 1}, PTime: 20},
			rtpbridge.Format{Codec: "G722", ClockRate: 8000, PayloadType: 9, Channels: 1, PTime: 20 * time.Millisecond}, false},
		{"GSM", sdp.Negotiated{Codec: sdp.Codec{Name: "GSM", PayloadType: 3, ClockRate: 8000}}, rtpbridge.Format{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SIPFormat(tt.neg)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if got.Codec != tt.want.Codec || got.ClockRate != tt.want.ClockRate || got.PayloadType != tt.want.PayloadType ||
				got.Channels != tt.want.Channels || got.PTime != tt.want.PTime || got.DTMFPayloadType != tt.want.DTMFPayloadType ||
				got.SSRC != 0 || got.Extensions != nil {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSIPHold(t *testing.T) {
	for _, tt := range []struct {
		dir                   sdp.Direction
		sipHeld, telegramHeld bool
	}{
		{sdp.SendRecv, false, false},
		{sdp.RecvOnly, true, false}, // the PBX's music on hold still reaches Telegram
		{sdp.SendOnly, false, true},
		{sdp.Inactive, true, true},
	} {
		s, tg := SIPHold(tt.dir)
		if s != tt.sipHeld || tg != tt.telegramHeld {
			t.Errorf("%v: SIP held %v, Telegram held %v; want %v, %v", tt.dir, s, tg, tt.sipHeld, tt.telegramHeld)
		}
	}
}

func TestTelegramFormat(t *testing.T) {
	f := TelegramFormat(tgcall.Audio{SSRC: 42, PayloadType: 111, RemotePayloadType: 120, AbsSendTimeID: 2, TransportCCID: 3})
	if f.Codec != rtpbridge.CodecOpus || f.ClockRate != 48000 || f.PayloadType != 111 || f.RemotePayloadType != 120 ||
		f.SSRC != 42 || f.PTime != 20*time.Millisecond || f.Extensions != nil || f.DTMFPayloadType != 0 {
		t.Errorf("%+v", f)
	}
}

func TestNewCodecs(t *testing.T) {
	for _, tt := range []struct {
		codec       string
		opt         MediaOptions
		passthrough bool
		sipRate     int // 0: no SIP codecs
		opusRate    int // 0: no Opus encoder
		opusDecoder bool
	}{
		{"opus", MediaOptions{}, true, 0, 0, false},
		{"opus", MediaOptions{RenderDTMF: true}, true, 0, 48000, false},
		{"opus", MediaOptions{DetectDTMF: true}, true, 0, 0, true},
		{"PCMU", MediaOptions{}, false, 8000, 8000, true},
		{"PCMA", MediaOptions{}, false, 8000, 8000, true},
		{"G722", MediaOptions{}, false, 16000, 16000, true},
	} {
		clock := 8000
		if tt.codec == "opus" {
			clock = 48000
		}
		c, err := NewCodecs(rtpbridge.Format{Codec: tt.codec, ClockRate: clock}, tt.opt)
		if err != nil {
			t.Fatalf("%s: %v", tt.codec, err)
		}
		if c.Passthrough != tt.passthrough {
			t.Errorf("%s: passthrough %v", tt.codec, c.Passthrough)
		}
		if tt.sipRate == 0 {
			if c.SIP.Decoder != nil || c.SIP.Encoder != nil {
				t.Errorf("%s: SIP codecs on a passthrough", tt.codec)
			}
		} else if c.SIP.Decoder.SampleRate() != tt.sipRate || c.SIP.Encoder.SampleRate() != tt.sipRate {
			t.Errorf("%s: SIP codecs at %d/%d Hz, want %d", tt.codec, c.SIP.Decoder.SampleRate(), c.SIP.Encoder.SampleRate(), tt.sipRate)
		}
		if (c.Telegram.Encoder != nil) != (tt.opusRate != 0) || (c.Telegram.Decoder != nil) != tt.opusDecoder {
			t.Fatalf("%s %+v: Telegram codecs %+v", tt.codec, tt.opt, c.Telegram)
		}
		if tt.opusRate != 0 && c.Telegram.Encoder.SampleRate() != tt.opusRate {
			t.Errorf("%s: Opus encoder at %d Hz, want %d (no resampler)", tt.codec, c.Telegram.Encoder.SampleRate(), tt.opusRate)
		}
		if tt.opusDecoder && !tt.passthrough && c.Telegram.Decoder.SampleRate() != tt.opusRate {
			t.Errorf("%s: Opus decoder at %d Hz", tt.codec, c.Telegram.Decoder.SampleRate())
		}
	}
}

// The Telegram leg reports its peer's loss to the bridge, which drives the
// Opus encoder's FEC with it (rtpbridge.Bridge adaptLoss).
var _ rtpbridge.LossReporter = (*TelegramEndpoint)(nil)

func TestLossFloor(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, 0}, {-1, 0}, {25, 25}} {
		if got := lossFloor(c.in); got != c.want {
			t.Errorf("lossFloor(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
