package wire

import (
	"testing"
)

// A typical signaling packet: one Candidates message in a record.
var benchBody = msgRec(1|SeqRequiresAck, `{"@type":"Candidates","candidates":[{"sdpString":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host generation 0 ufrag abcd network-id 1"}]}`)

func BenchmarkEncryptSignaling(b *testing.B) {
	k := testKey()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		EncryptSignaling(k, true, benchBody)
	}
}

func BenchmarkDecryptSignaling(b *testing.B) {
	k := testKey()
	packet := EncryptSignaling(k, true, benchBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(packet)))
	for b.Loop() {
		if _, err := DecryptSignaling(k, false, packet); err != nil {
			b.Fatal(err)
		}
	}
}
