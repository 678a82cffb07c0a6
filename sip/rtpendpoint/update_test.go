package rtpendpoint

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip/sdp"
)

// TestRekeyNoLoss: the peer streams continuously while a re-INVITE gives
// both sides new keys. Update happens mid-stream, the peer keeps sending
// under the old keys for a while (its answer still in flight) and then
// switches: every packet arrives, in order. Our own stream switches to the
// new local key at Update. After the switch the old keys are refused.
func TestRekeyNoLoss(t *testing.T) {
	for _, suite := range []sdp.Suite{sdp.AESCM128HMACSHA180, sdp.AEADAES256GCM} {
		t.Run(string(suite), func(t *testing.T) {
			k1 := newKeys(t, suite, false)
			pr := newPair(t, k1, true, Options{}, nil)
			r := startReader(t, pr.ep)
			p := pr.peer
			oldTx := p.tx
			k2 := newKeys(t, suite, false)
			newPeer := &peer{t: t}
			newPeer.setKeys(k2)

			const total = 400
			var updated, switchKeys atomic.Bool
			var oldStale []byte // an old-key packet kept to replay after the switch
			expect := p.seq + 1
			sent := make(chan struct{})
			// At most 64 packets in flight, so a reader starved by a
			// loaded machine cannot overflow the socket buffer: a
			// kernel drop would look like a lost packet.
			window := make(chan struct{}, 64)
			go func() {
				defer close(sent)
				tick := time.NewTicker(200 * time.Microsecond)
				defer tick.Stop()
				for i := 0; i < total; i++ {
					<-tick.C
					window <- struct{}{}
					raw := p.packet(bytes.Repeat([]byte{byte(i)}, 80))
					var out []byte
					if switchKeys.Load() {
						out, _ = newPeer.tx.EncryptRTP(nil, raw, nil)
					} else {
						out, _ = oldTx.EncryptRTP(nil, raw, nil)
						if updated.Load() {
							oldStale = out
						}
					}
					if _, err := p.conn.WriteToUDPAddrPort(out, p.epRTP); err != nil {
						return
					}
				}
			}()

			seen := 0
			for seen < total {
				got, err := r.next(waitFor)
				if err != nil {
					t.Fatalf("after %d packets: %v", seen, err)
				}
				if got.SequenceNumber != expect {
					t.Fatalf("packet %d: seq %d, want %d (lost or reordered)", seen, got.SequenceNumber, expect)
				}
				expect++
				seen++
				<-window
				switch seen {
				case 100:
					neg := pr.neg
					neg.SRTP = k2
					if err := pr.ep.Update(neg); err != nil {
						t.Error(err)
					}
					updated.Store(true)
				case 150:
					switchKeys.Store(true)
				}
			}
			<-sent
			st := pr.ep.Stats()
			if st.Received.AuthFailures != 0 || st.Received.Lost != 0 || st.Received.Packets != total {
				t.Fatalf("stats: %+v", st.Received)
			}
			if pr.ep.st.Load().hasPrev {
				t.Fatal("old keys still accepted after the peer switched")
			}
			if oldStale == nil {
				t.Fatal("no old-key packet sent after Update")
			}
			// A packet under the old keys after the switch is refused.
			p.sendRaw(p.conn, oldStale)
			pr.peer.send([]byte("after")) // keeps ReadRTP busy; under the old ctx too: refused
			eventually(t, "old-key packets refused", func() bool {
				return pr.ep.Stats().Received.AuthFailures+pr.ep.Stats().Received.Replayed >= 2
			})

			// Our stream: the new local key from Update on.
			if err := pr.ep.WriteRTP(rtpPacket(t, 0x77, 1, 160, []byte("new key"))); err != nil {
				t.Fatal(err)
			}
			p.rx = newPeer.rx
			back, err := p.recvRTP(waitFor)
			if err != nil || string(back.Payload) != "new key" {
				t.Fatalf("peer with the new key: %v %q", err, back.Payload)
			}
		})
	}
}

// TestUpdateSameKeysKeepsContext: an Update that changes nothing in the
// keys (hold, resume, a session refresh) keeps the SRTP contexts, so the
// rollover counter survives: the peer started at 65500 and wrapped, and a
// fresh context would guess ROC 0 and fail every packet.
func TestUpdateSameKeysKeepsContext(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{}, nil)
	r := startReader(t, pr.ep)
	for range 100 { // across the wrap at 65536
		pr.peer.send([]byte("a"))
		if _, err := r.next(waitFor); err != nil {
			t.Fatal(err)
		}
	}
	before := pr.ep.st.Load().rx
	neg := pr.neg
	neg.SRTP = &sdp.SRTPKeys{} // a copy with the same values
	*neg.SRTP = *pr.neg.SRTP
	neg.SRTP.RemoteKey = append([]byte(nil), pr.neg.SRTP.RemoteKey...)
	if err := pr.ep.Update(neg); err != nil {
		t.Fatal(err)
	}
	if pr.ep.st.Load().rx != before || pr.ep.st.Load().hasPrev {
		t.Fatal("unchanged keys got a new context")
	}
	pr.peer.send([]byte("b"))
	if got, err := r.next(waitFor); err != nil || string(got.Payload) != "b" {
		t.Fatalf("%v %q", err, got.Payload)
	}
}

// TestHold: a direction that does not send drops WriteRTP (nil error,
// counted); resume sends again; the peer sees nothing from the hold.
func TestHold(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AEADAES128GCM, false), true, Options{}, nil)
	send := func(seq uint16, payload string) {
		if err := pr.ep.WriteRTP(rtpPacket(t, 0x42, seq, uint32(seq)*160, []byte(payload))); err != nil {
			t.Fatal(err)
		}
	}
	send(1, "before")
	if got, err := pr.peer.recvRTP(waitFor); err != nil || string(got.Payload) != "before" {
		t.Fatalf("%v %q", err, got.Payload)
	}
	for _, dir := range []sdp.Direction{sdp.RecvOnly, sdp.Inactive} {
		neg := pr.neg
		neg.Direction = dir
		if err := pr.ep.Update(neg); err != nil {
			t.Fatal(err)
		}
		send(2, "held")
	}
	// RFC 2543 hold: c=0.0.0.0 with sendrecv still sends nothing.
	neg := pr.neg
	neg.Remote = netip.AddrPortFrom(netip.IPv4Unspecified(), pr.neg.Remote.Port())
	if err := pr.ep.Update(neg); err != nil {
		t.Fatal(err)
	}
	send(3, "held")
	if err := pr.ep.Update(pr.neg); err != nil {
		t.Fatal(err)
	}
	send(4, "after")
	got, err := pr.peer.recvRTP(waitFor)
	if err != nil || string(got.Payload) != "after" {
		t.Fatalf("first packet after resume: %v %q", err, got.Payload)
	}
	st := pr.ep.Stats().Sent
	if st.HeldDrops != 3 || st.Packets != 2 {
		t.Fatalf("sent stats %+v", st)
	}
}

// TestPlainToSRTP: a re-INVITE that adds SDES keys to a plain call; plain
// packets in flight are still accepted until the first SRTP one.
func TestPlainToSRTP(t *testing.T) {
	pr := newPair(t, nil, true, Options{}, nil)
	r := startReader(t, pr.ep)
	pr.peer.send([]byte("plain1"))
	if _, err := r.next(waitFor); err != nil {
		t.Fatal(err)
	}
	k := newKeys(t, sdp.AESCM128HMACSHA180, false)
	neg := pr.neg
	neg.SRTP = k
	if err := pr.ep.Update(neg); err != nil {
		t.Fatal(err)
	}
	pr.peer.send([]byte("plain2"))
	pr.peer.setKeys(k)
	pr.peer.send([]byte("srtp"))
	for _, want := range []string{"plain2", "srtp"} {
		got, err := r.next(waitFor)
		if err != nil || string(got.Payload) != want {
			t.Fatalf("want %q: %v %q", want, err, got.Payload)
		}
	}
	if pr.ep.st.Load().hasPrev {
		t.Fatal("plain still accepted after the first SRTP packet")
	}
}

// TestDoubleRekey: two re-INVITEs in a row before the peer switched: the
// keys the peer still uses stay accepted, then the newest take over.
func TestDoubleRekey(t *testing.T) {
	k1 := newKeys(t, sdp.AEADAES128GCM, false)
	pr := newPair(t, k1, true, Options{}, nil)
	r := startReader(t, pr.ep)
	for range 2 {
		neg := pr.neg
		neg.SRTP = newKeys(t, sdp.AEADAES128GCM, false)
		if err := pr.ep.Update(neg); err != nil {
			t.Fatal(err)
		}
		pr.neg = neg
	}
	pr.peer.send([]byte("old keys"))
	pr.peer.setKeys(pr.neg.SRTP)
	pr.peer.send([]byte("newest keys"))
	for _, want := range []string{"old keys", "newest keys"} {
		got, err := r.next(waitFor)
		if err != nil || string(got.Payload) != want {
			t.Fatalf("want %q: %v %q", want, err, got.Payload)
		}
	}
}

// TestNoKeysInLogs: with debug logging on, creating, rekeying and latching
// log no key material, in any spelling.
func TestNoKeysInLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k1 := newKeys(t, sdp.AESCM128HMACSHA180, true)
	pr := newPair(t, k1, true, Options{Logger: log, Latch: true}, nil)
	r := startReader(t, pr.ep)
	pr.peer.send([]byte("latch"))
	if _, err := r.next(waitFor); err != nil {
		t.Fatal(err)
	}
	k2 := newKeys(t, sdp.AEADAES256GCM, false)
	neg := pr.neg
	neg.SRTP = k2
	if err := pr.ep.Update(neg); err != nil {
		t.Fatal(err)
	}
	pr.peer.setKeys(k2)
	pr.peer.send([]byte("new keys"))
	if _, err := r.next(waitFor); err != nil {
		t.Fatal(err)
	}
	pr.ep.Close()
	out := buf.String()
	if !strings.Contains(out, "latched") || !strings.Contains(out, "updated") {
		t.Fatalf("expected debug lines, got:\n%s", out)
	}
	for _, k := range [][]byte{k1.LocalKey, k1.RemoteKey, k1.LocalSalt, k1.RemoteSalt, k2.LocalKey, k2.RemoteKey} {
		for _, enc := range []string{string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), fmt.Sprint(k)} {
			if strings.Contains(out, enc) {
				t.Fatalf("key material in the log:\n%s", out)
			}
		}
	}
}
