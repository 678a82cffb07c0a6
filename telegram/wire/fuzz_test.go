package wire

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// The fuzz targets feed network input to every parser; they must never
// panic and must uphold the invariants checked below. Seeds live in
// testdata/fuzz/<target>/ as well as here.

func FuzzDecryptSignaling(f *testing.F) {
	k := testKey()
	f.Add(EncryptSignaling(k, false, msgRec(1|SeqRequiresAck, `{"@type":"MediaState"}`)), true)
	f.Add(EncryptSignaling(k, true, seqRec(1, recordEmpty)), false)
	f.Add(make([]byte, MinSignalingPacket), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, packet []byte, outgoing bool) {
		body, err := DecryptSignaling(k, outgoing, packet)
		if err != nil {
			return
		}
		if len(body) != len(packet)-msgKeySize {
			t.Fatalf("body of %d bytes from a packet of %d", len(body), len(packet))
		}
		if again := EncryptSignaling(k, !outgoing, body); !bytes.Equal(again, packet) {
			t.Fatal("decrypted body does not re-encrypt to the packet")
		}
	})
}

// FuzzConnectionReceive encrypts arbitrary bodies as the callee so the
// record parser and the connection state are reached.
func FuzzConnectionReceive(f *testing.F) {
	k := testKey()
	ack := SeqRequiresAck
	f.Add(msgRec(1|ack, "a"), uint16(0))
	f.Add(cat(seqRec(3, recordEmpty), seqRec(1|ack, recordAck), msgRec(1|ack, "a"), msgRec(2, "b")), uint16(10))
	f.Add(cat(seqRec(1, recordAck)), uint16(100))
	f.Add(cat(seqRec(1|SeqSingleMessage, recordCustom), []byte{0, 0, 0, 1, 'x'}), uint16(4000))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff}, uint16(6000))
	f.Fuzz(func(t *testing.T, body []byte, ms uint16) {
		if len(body) < 5 {
			return
		}
		c := NewConnection(k, true)
		if _, err := c.Send([]byte(`{"@type":"MediaState"}`), testEpoch); err != nil {
			t.Fatal(err)
		}
		now := testEpoch.Add(time.Duration(ms) * time.Millisecond)
		for i := range 2 { // twice: the second copy is a replay
			msgs, out, err := c.Receive(EncryptSignaling(k, false, body), now)
			if i == 1 && err == nil {
				t.Fatal("replayed packet accepted")
			}
			if err != nil && (msgs != nil || out != nil) {
				t.Fatal("output with an error")
			}
			for _, m := range msgs {
				if len(m) > len(body) {
					t.Fatal("message longer than the body")
				}
			}
			for _, p := range out {
				if len(p) > MaxSignalingPacket {
					t.Fatalf("packet of %d bytes", len(p))
				}
				if _, err := DecryptSignaling(k, false, p); err != nil {
					t.Fatalf("own packet does not decrypt: %v", err)
				}
			}
		}
		out, _ := c.Poll(now.Add(time.Minute))
		for _, p := range out {
			if len(p) > MaxSignalingPacket {
				t.Fatalf("packet of %d bytes", len(p))
			}
		}
	})
}

func FuzzUnmarshalMessage(f *testing.F) {
	for _, s := range []string{
		`{"@type":"InitialSetup","ufrag":"u","pwd":"p","renomination":true,"fingerprints":[{"hash":"sha-256","setup":"actpass","fingerprint":"AB"}]}`,
		`{"@type":"Candidates","candidates":[{"sdpString":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0}]}`,
		`{"@type":"NegotiateChannels","exchangeId":"12","contents":[{"type":"audio","ssrc":"1","ssrcGroups":[{"semantics":"FID","ssrcs":["1",2]}],"payloadTypes":[{"id":111,"name":"opus","clockrate":48000,"channels":2,"feedbackTypes":[{"type":"transport-cc","subtype":""}],"parameters":{"minptime":"10"}}],"rtpExtensions":[{"id":2,"uri":"x"}]}]}`,
		`{"@type":"MediaState","muted":true,"lowBattery":false,"videoState":"inactive","videoRotation":90,"screencastState":"active"}`,
		`{"@type":"Other"}`,
		`{"@type":"NegotiateChannels","exchangeId":1e300}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		// Whatever parses must serialize (an answer echoes the peer's
		// contents) and parse back to the same value.
		out, err := MarshalMessage(m)
		if err != nil {
			t.Fatalf("MarshalMessage(%#v): %v", m, err)
		}
		again, err := UnmarshalMessage(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the message:\n%#v\n%s\n%#v", m, out, again)
		}
	})
}

func FuzzParseFromReflector(f *testing.F) {
	tag, _ := NewTag(bytes.Repeat([]byte{1}, 16), 77)
	f.Add(AppendToClient(nil, tag, 5, []byte("stun")))
	f.Add(AppendHelloReply(nil, tag))
	f.Add(tag[:])
	f.Add(make([]byte, 25))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseFromReflector(b)
		if err != nil {
			return
		}
		if p.Service && p.Data != nil {
			t.Fatal("service packet with data")
		}
		if !p.Service {
			again := AppendToClient(nil, p.Tag, p.SenderRandom, p.Data)
			if !bytes.Equal(again[:reflectorHeader+len(p.Data)], b[:reflectorHeader+len(p.Data)]) {
				t.Fatal("re-encoding differs")
			}
		}
	})
}

func FuzzParseToReflector(f *testing.F) {
	tag, _ := NewTag(bytes.Repeat([]byte{1}, 16), 77)
	f.Add(AppendHello(nil, tag))
	f.Add(AppendReflectorData(nil, tag, 1, 2, []byte("dtls")))
	f.Add(make([]byte, 24))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseToReflector(b)
		if err != nil {
			return
		}
		if p.Hello && p.Data != nil {
			t.Fatal("hello with data")
		}
		if len(p.Data) > len(b)-reflectorHeader {
			t.Fatal("data longer than the datagram")
		}
	})
}

func FuzzParseReflectorHostname(f *testing.F) {
	f.Add(ReflectorHostname(3, 123456))
	f.Add("reflector-0-1.reflector")
	f.Fuzz(func(t *testing.T, host string) {
		id, r, err := ParseReflectorHostname(host)
		if err != nil {
			return
		}
		if ReflectorHostname(id, r) != host {
			t.Fatalf("%q parsed to %d/%d which prints differently", host, id, r)
		}
	})
}
