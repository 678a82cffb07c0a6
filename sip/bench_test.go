package sip

import (
	"context"
	"fmt"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

const benchOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"

// BenchmarkInviteAnswerAckBye measures whole calls handled per second: an
// in-process sipgo UAC over loopback UDP places a call, our server answers
// at once, the UAC ACKs and hangs up.
func BenchmarkInviteAnswerAckBye(b *testing.B) {
	s := newTestServer(b, func(c *Config) {
		c.RTPPorts = PortRange{Min: 29200, Max: 30199}
	})
	s.OnCall(func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			b.Error(err)
		}
	})
	start(b, s)
	ap, _ := s.Addr(UDP)

	u := newUAC(b)
	cli, uacAddr := u.cli, u.addr
	dua := sipgo.DialogUA{Client: cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bench", Host: "127.0.0.1", Port: uacAddr.Port}}}
	target := sip.Uri{Scheme: "sip", User: "1000", Host: ap.Addr().String(), Port: int(ap.Port())}
	ctx := context.Background()
	ct := sip.NewHeader("Content-Type", "application/sdp")

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sess, err := dua.Invite(ctx, target, []byte(benchOffer), ct)
		if err != nil {
			b.Fatal(err)
		}
		if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
			b.Fatal(fmt.Errorf("call %d: %w", i, err))
		}
		if err := sess.Ack(ctx); err != nil {
			b.Fatal(err)
		}
		if err := sess.Bye(ctx); err != nil {
			b.Fatal(err)
		}
		sess.Close()
	}
	b.StopTimer()
	waitNoCalls(b, s)
}
