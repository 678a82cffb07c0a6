// This test joins rtpbridge with the real codecs of rtpbridge/codec: PCMU
// and G.722 on the SIP leg, Opus opened at the SIP rate on the Telegram
// leg, tones both ways and 60 ms Opus frames from Telegram with one lost
// (concealed by FEC).

package rtpbridge

import (
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge/codec"
)

func TestRealCodecs(t *testing.T) {
	for _, sipCodec := range []string{"PCMU", "G722"} {
		t.Run(sipCodec, func(t *testing.T) {
			sip, tg := newChanEndpoint(), newChanEndpoint()
			rate := codec.OpusRateFor(sipCodec)
			sipDec, _ := codec.NewDecoder(sipCodec, 8000, codec.Options{})
			sipEnc, _ := codec.NewEncoder(sipCodec, 8000, codec.Options{})
			tgDec, err := codec.NewDecoder("opus", 48000, codec.Options{SampleRate: rate})
			if err != nil {
				t.Fatal(err)
			}
			tgEnc, err := codec.NewEncoder("opus", 48000, codec.Options{SampleRate: rate})
			if err != nil {
				t.Fatal(err)
			}
			pt := PayloadType(0)
			if sipCodec == "G722" {
				pt = 9
			}
			b, stop := running(t, Config{
				SIP:      Leg{Endpoint: sip, Format: Format{Codec: sipCodec, ClockRate: 8000, PayloadType: pt}, Decoder: sipDec, Encoder: sipEnc},
				Telegram: Leg{Endpoint: tg, Format: Format{Codec: "opus", ClockRate: 48000, PayloadType: 111}, Decoder: tgDec, Encoder: tgEnc},
			})
			// SIP -> Telegram
			enc, _ := codec.NewEncoder(sipCodec, 8000, codec.Options{})
			n := enc.SampleRate() / 50
			pcm := make([]int16, n)
			out := make([]byte, 1500)
			for i := 0; i < 50; i++ {
				audiotest.Tone(pcm, 1000, enc.SampleRate(), i*n)
				m, _ := enc.Encode(pcm, out)
				sip.rx <- pkt(pt, uint16(i), uint32(i*160), 3, false, out[:m])
			}
			odec, _ := codec.NewOpusDecoder(48000)
			var got []int16
			buf := make([]int16, 5760)
			for i := 0; i < 50; i++ {
				h, _ := tg.recv(t)
				m, err := odec.Decode(h.payload, buf)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, buf[:m]...)
			}
			checkTone(t, got[48000/5:], 48000, 1000)
			// Telegram 60 ms -> SIP
			oenc, _ := codec.NewOpusEncoder(codec.Options{})
			frame := make([]int16, 2880)
			for i := 0; i < 20; i++ {
				audiotest.Tone(frame, 440, 48000, i*2880)
				m, err := oenc.Encode(frame, out)
				if err != nil {
					t.Fatal(err)
				}
				if i == 8 {
					continue
				}
				tg.rx <- pkt(111, uint16(i), uint32(i*2880), 4, false, out[:m])
			}
			dec, _ := codec.NewDecoder(sipCodec, 8000, codec.Options{})
			got = got[:0]
			buf2 := make([]int16, 2000)
			for i := 0; i < 57; i++ {
				h, _ := sip.recv(t)
				m, err := dec.Decode(h.payload, buf2)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, buf2[:m]...)
			}
			checkTone(t, got[dec.SampleRate()/5:], dec.SampleRate(), 440)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if st := b.Stats().TelegramToSIP; st.Concealed != 1 || st.Lost != 1 {
				t.Fatalf("%+v", st)
			}
		})
	}
}
