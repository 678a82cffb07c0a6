package tgcall

import (
	"crypto/rand"
	"testing"

	"github.com/tgsip/tgsip/telegram/wire"
)

// tgcallsOffer is the shape of an offer from an official client: audio with
// Opus among other codecs, a video content, and extension ids of its own.
func tgcallsOffer(id uint32) *wire.NegotiateChannels {
	return &wire.NegotiateChannels{
		ExchangeID: id,
		Contents: []wire.Content{
			{
				Type: "audio", SSRC: 0xdeadbeef,
				PayloadTypes: []wire.PayloadType{
					{ID: 111, Name: "opus", ClockRate: 48000, Channels: 2,
						FeedbackTypes: []wire.FeedbackType{{Type: "transport-cc"}},
						Parameters:    map[string]string{"minptime": "10", "useinbandfec": "1"}},
					{ID: 126, Name: "telephone-event", ClockRate: 8000, Channels: 1},
				},
				RTPExtensions: []wire.RTPExtension{
					{ID: 1, URI: "urn:ietf:params:rtp-hdrext:ssrc-audio-level"},
					{ID: 4, URI: uriAbsSendTime},
					{ID: 5, URI: uriTransportCC},
				},
			},
			{
				Type: "video", SSRC: 77,
				SSRCGroups:   []wire.SSRCGroup{{Semantics: "FID", SSRCs: []uint32{77, 78}}},
				PayloadTypes: []wire.PayloadType{{ID: 96, Name: "VP8", ClockRate: 90000}},
			},
		},
	}
}

func TestNegotiatorAnswerEchoesOfferer(t *testing.T) {
	n := newNegotiator(false, rand.Reader)
	ans := n.handle(tgcallsOffer(42))
	if ans == nil || ans.ExchangeID != 42 {
		t.Fatalf("answer = %+v, want exchange 42", ans)
	}
	if len(ans.Contents) != 1 {
		t.Fatalf("answer has %d contents, want audio only", len(ans.Contents))
	}
	c := ans.Contents[0]
	if c.SSRC != 0xdeadbeef {
		t.Errorf("answer SSRC %x, want the offerer's deadbeef (not ours: gotd defect #1)", c.SSRC)
	}
	if len(c.PayloadTypes) != 1 || c.PayloadTypes[0].ID != 111 || c.PayloadTypes[0].Name != "opus" {
		t.Errorf("answer payload types %+v, want opus under the offerer's id", c.PayloadTypes)
	}
	if len(c.RTPExtensions) != 2 || c.RTPExtensions[0].ID != 4 || c.RTPExtensions[1].ID != 5 {
		t.Errorf("answer extensions %+v, want abs-send-time 4 and transport-cc 5", c.RTPExtensions)
	}
	if n.in == nil || n.in.ssrc != 0xdeadbeef || n.in.transportCC != 5 {
		t.Errorf("incoming channel %+v", n.in)
	}
	if n.out != nil {
		t.Error("an answer must not create our outgoing channel")
	}
	// Having answered, the callee now offers its own stream.
	off := n.offer()
	if off == nil || len(off.Contents) != 1 || off.Contents[0].SSRC != n.ssrc {
		t.Fatalf("offer after answer = %+v", off)
	}
	if n.offer() != nil {
		t.Error("second offer while one is pending")
	}
}

func TestNegotiatorSetAnswerOnlyForOurSSRC(t *testing.T) {
	n := newNegotiator(true, rand.Reader)
	off := n.offer()
	// An answer that echoes someone else's SSRC creates nothing.
	bad := &wire.NegotiateChannels{ExchangeID: off.ExchangeID, Contents: []wire.Content{{
		Type: "audio", SSRC: n.ssrc + 1, PayloadTypes: off.Contents[0].PayloadTypes,
	}}}
	n.handle(bad)
	if n.out != nil {
		t.Fatal("outgoing channel created from an answer with a foreign SSRC")
	}
	// Like tgcalls, an answer ends the negotiation even when it created
	// nothing: no new offer follows.
	if n.offer() != nil {
		t.Fatal("re-offer after an answer")
	}
	n = newNegotiator(true, rand.Reader)
	off = n.offer()
	good := &wire.NegotiateChannels{ExchangeID: off.ExchangeID, Contents: []wire.Content{{
		Type: "audio", SSRC: n.ssrc,
		PayloadTypes:  []wire.PayloadType{{ID: 109, Name: "opus", ClockRate: 48000, Channels: 2}},
		RTPExtensions: []wire.RTPExtension{{ID: 3, URI: uriTransportCC}},
	}}}
	if reply := n.handle(good); reply != nil {
		t.Fatalf("answer to our offer produced a reply %+v", reply)
	}
	if n.out == nil || n.out.payloadType != 109 || n.out.transportCC != 3 || n.out.absSendTime != 0 {
		t.Fatalf("outgoing channel %+v, want PT 109, tcc 3, no abs-send-time", n.out)
	}
	if n.offer() != nil {
		t.Error("offer after our channel was answered")
	}
}

func TestNegotiatorGlare(t *testing.T) {
	caller := newNegotiator(true, rand.Reader)
	callee := newNegotiator(false, rand.Reader)
	co := caller.offer()
	ce := callee.offer()
	// Both offers cross. The caller ignores the callee's offer…
	if r := caller.handle(ce); r != nil {
		t.Fatalf("caller answered the callee's offer in glare: %+v", r)
	}
	// …the callee drops its own and answers the caller's.
	ans := callee.handle(co)
	if ans == nil || ans.ExchangeID != co.ExchangeID {
		t.Fatalf("callee answer %+v", ans)
	}
	if callee.pending != nil {
		t.Fatal("callee kept its pending offer")
	}
	caller.handle(ans)
	if caller.out == nil {
		t.Fatal("caller has no outgoing channel after the answer")
	}
	// The callee re-offers; the caller answers; both directions exist.
	re := callee.offer()
	back := caller.handle(re)
	callee.handle(back)
	if callee.out == nil || caller.in == nil || caller.in.ssrc != callee.ssrc || callee.in.ssrc != caller.ssrc {
		t.Fatalf("channels: caller out %+v in %+v, callee out %+v in %+v", caller.out, caller.in, callee.out, callee.in)
	}
}

func TestNegotiatorNoOpus(t *testing.T) {
	n := newNegotiator(false, rand.Reader)
	ans := n.handle(&wire.NegotiateChannels{ExchangeID: 1, Contents: []wire.Content{{
		Type: "audio", SSRC: 5, PayloadTypes: []wire.PayloadType{{ID: 0, Name: "PCMU", ClockRate: 8000}},
	}}})
	if ans == nil || len(ans.Contents) != 0 || n.in != nil {
		t.Fatalf("answer %+v, in %+v: want an empty answer and no channel", ans, n.in)
	}
}

// TestNegotiatorAnswerWithZeroInGroup: an offer whose audio SSRC group holds
// the number 0 (which tgcalls' SsrcGroup_parse takes) is answered, and the
// answer, echoing the group, can be sent (it could not be marshalled before).
func TestNegotiatorAnswerWithZeroInGroup(t *testing.T) {
	m, err := wire.UnmarshalMessage([]byte(`{"@type":"NegotiateChannels","exchangeId":"9","contents":[{"type":"audio","ssrc":"5",` +
		`"ssrcGroups":[{"semantics":"FID","ssrcs":["5",0]}],` +
		`"payloadTypes":[{"id":111,"name":"opus","clockrate":48000,"channels":2}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ans := newNegotiator(false, rand.Reader).handle(m.(*wire.NegotiateChannels))
	if ans == nil || len(ans.Contents) != 1 || len(ans.Contents[0].SSRCGroups) != 1 {
		t.Fatalf("answer %+v, want the audio content with its group", ans)
	}
	out, err := wire.MarshalMessage(ans)
	if err != nil {
		t.Fatalf("answer cannot be sent: %v", err)
	}
	back, err := wire.UnmarshalMessage(out)
	if err != nil {
		t.Fatalf("answer %s does not parse: %v", out, err)
	}
	if g := back.(*wire.NegotiateChannels).Contents[0].SSRCGroups[0].SSRCs; len(g) != 2 || g[0] != 5 || g[1] != 0 {
		t.Errorf("echoed group %v, want [5 0]", g)
	}
}
