package sip

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/sip/sdp"
)

// TestSippRekeyKeepsAudio: sipp places an SDES-SRTP call and, 1.5 s into
// it, re-INVITEs with a new key; the trunk answers with a new key of its
// own. Audio runs all along between the call's endpoint and a media peer
// of the test that plays the PBX's media (sipp cannot do SRTP): the peer
// switches to its new key once the re-INVITE is answered, as a real PBX
// does, and must not lose a packet to the switch in either direction.
//
// With symmetric_rtp on the trunk, the SDP names a port the peer does not
// send from (a phone behind NAT): the endpoint latches to the peer's
// source at its first packet, and the rekey keeps the latch.
func TestSippRekeyKeepsAudio(t *testing.T) {
	t.Run("negotiated address", func(t *testing.T) { testRekey(t, false) })
	t.Run("symmetric RTP", func(t *testing.T) { testRekey(t, true) })
}

func testRekey(t *testing.T, latch bool) {
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	sdpPort := peer.LocalAddr().(*net.UDPAddr).Port
	if latch {
		// The address in the SDP: bound, so nothing else gets our
		// packets, but never read: only latching reaches the peer.
		nat, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer nat.Close()
		sdpPort = nat.LocalAddr().(*net.UDPAddr).Port
	}
	k1, k2 := make([]byte, 30), make([]byte, 30) // AES_CM_128: 16 key + 14 salt
	_, _ = rand.Read(k1)
	_, _ = rand.Read(k2)
	b64 := base64.StdEncoding.EncodeToString

	s := newTestServer(t, func(c *Config) {
		c.Media = sdp.DefaultConfig()
		c.Media.Codecs = []string{"PCMU"}
		c.Media.SRTP = sdp.SRTPRequired
		c.Media.Suites = []sdp.Suite{sdp.AESCM128HMACSHA180}
		c.Trunks[0].SymmetricRTP = latch
	})
	medias := make(chan Media, 4)
	got := calls(s, func(c *InboundCall) {
		onMedia(c, func(m Media) { medias <- m })
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_srtp_rekey.xml", Args: []string{
		"-key", "mport", fmt.Sprint(sdpPort),
		"-key", "k1", b64(k1), "-key", "k2", b64(k2),
	}})
	c := waitFor(t, got, "call")
	waitFor(t, c.Confirmed(), "ACK")
	m1 := c.Media()
	if m1.Endpoint == nil || m1.SRTP == nil || !bytes.Equal(append(bytes.Clone(m1.SRTP.RemoteKey), m1.SRTP.RemoteSalt...), k1) {
		t.Fatal("first negotiation: no endpoint or not sipp's first key")
	}
	ep := m1.Endpoint
	trunk := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), c.port.Port())
	pt := m1.Codec.PayloadType

	// The peer's sender: a 440 Hz tone under k1, under k2 once switch
	// is closed; firstK2 is the sequence number of its first k2 packet.
	switchKeys := make(chan struct{})
	stop := make(chan struct{})
	var firstK2 atomic.Int32
	firstK2.Store(-1)
	var wg sync.WaitGroup
	peerErr := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		peerErr <- peerSend(peer, trunk, pt, k1, k2, switchKeys, stop, &firstK2)
	}()
	// The peer's receiver: our tone under the trunk's first key, then
	// under its second, which the peer learns from the answer (here: from
	// the call's media, set before the answer leaves).
	var peerPCM []int16
	var peerUndecryptable, peerUnderL2 int
	go func() {
		defer wg.Done()
		var err error
		peerPCM, peerUnderL2, peerUndecryptable, err = peerReceive(peer, c, m1.SRTP)
		peerErr <- err
	}()
	// Our side, through the endpoint only: a 1000 Hz tone out, and every
	// packet in, kept with its sequence number.
	type pkt struct {
		seq uint16
		pcm []int16
	}
	var ours []pkt
	ourDone := make(chan error, 2)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := ep.ReadRTP(buf)
			if err != nil {
				ourDone <- err
				return
			}
			var p rtp.Packet
			if err := p.Unmarshal(buf[:n]); err != nil {
				ourDone <- err
				return
			}
			q := pkt{seq: p.SequenceNumber}
			for _, b := range p.Payload {
				q.pcm = append(q.pcm, ulawDecode(b))
			}
			ours = append(ours, q)
		}
	}()
	go func() {
		snd := newToneSender(ep, pt, toneToBaresip)
		tick := time.NewTicker(20 * time.Millisecond) // media pacing
		defer tick.Stop()
		for {
			if err := snd.send(); err != nil {
				ourDone <- err
				return
			}
			<-tick.C
		}
	}()

	m2 := waitFor(t, medias, "the re-INVITE's new keys")
	close(switchKeys)
	if m2.Endpoint != ep {
		t.Error("the re-INVITE replaced the endpoint instead of updating it")
	}
	if bytes.Equal(m2.SRTP.RemoteKey, m1.SRTP.RemoteKey) || bytes.Equal(m2.SRTP.LocalKey, m1.SRTP.LocalKey) {
		t.Error("the re-INVITE did not change the keys both ways")
	}
	finish() // sipp hangs up 1.5 s after the re-INVITE
	for range 2 {
		if err := waitFor(t, ourDone, "our media to stop"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("our media ended with %v, want net.ErrClosed", err)
		}
	}
	close(stop)
	_ = peer.SetReadDeadline(time.Now()) // ends the peer's receiver
	wg.Wait()
	for range 2 {
		if err := <-peerErr; err != nil {
			t.Error(err)
		}
	}

	st := ep.Stats()
	t.Logf("endpoint: %+v", st)
	if peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort(); ep.RemoteAddr() != peerAddr {
		t.Errorf("endpoint sends to %v, want the peer at %v", ep.RemoteAddr(), peerAddr)
	}
	if st.Received.AuthFailures != 0 || st.Received.Lost != 0 || st.Received.Replayed != 0 || st.Received.WrongSource != 0 {
		t.Errorf("packets lost or refused across the rekey: %+v", st.Received)
	}
	k2seq := firstK2.Load()
	var afterPCM []int16
	var after int
	for _, p := range ours {
		if k2seq >= 0 && int16(p.seq-uint16(k2seq)) >= 0 {
			after++
			afterPCM = append(afterPCM, p.pcm...)
		}
	}
	t.Logf("received %d packets, %d of them under the peer's new key; the peer got %d under our new key, %d undecryptable", len(ours), after, peerUnderL2, peerUndecryptable)
	if after < 40 {
		t.Fatalf("only %d packets under the new key reached the endpoint", after)
	}
	checkTone(t, "peer's audio after the rekey", afterPCM, toneFromBaresip)
	if peerUnderL2 < 40 || peerUndecryptable != 0 {
		t.Errorf("the peer got %d packets under our new key and %d it could not decrypt", peerUnderL2, peerUndecryptable)
	}
	checkTone(t, "our audio at the peer", peerPCM, toneToBaresip)
	checkEndpointClosed(t, ep)
}

// peerSend sends a 440 Hz tone from the peer's socket to the trunk under
// key k1 and, once switchKeys is closed, under k2, until stop.
func peerSend(c *net.UDPConn, to netip.AddrPort, pt uint8, k1, k2 []byte, switchKeys, stop <-chan struct{}, firstK2 *atomic.Int32) error {
	ctx, err := srtp.CreateContext(k1[:16], k1[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		return err
	}
	const samples = g711Rate / 50
	pcm := make([]int16, samples)
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: 65000, Timestamp: 1, SSRC: 0x9ee12}, Payload: make([]byte, samples)}
	tick := time.NewTicker(20 * time.Millisecond) // media pacing
	defer tick.Stop()
	var out []byte
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		case <-switchKeys:
			if firstK2.Load() < 0 {
				if ctx, err = srtp.CreateContext(k2[:16], k2[16:], srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
					return err
				}
				firstK2.Store(int32(p.SequenceNumber))
			}
		default:
		}
		audiotest.Tone(pcm, toneFromBaresip, g711Rate, i*samples)
		for j, x := range pcm {
			p.Payload[j] = ulawEncode(x)
		}
		raw, err := p.Marshal()
		if err != nil {
			return err
		}
		if out, err = ctx.EncryptRTP(out[:0], raw, nil); err != nil {
			return err
		}
		if _, err := c.WriteToUDPAddrPort(out, to); err != nil {
			return fmt.Errorf("peer send: %w", err)
		}
		p.SequenceNumber++ // wraps past 65535 during the call: the ROC moves
		p.Timestamp += samples
		<-tick.C
	}
}

// peerReceive decrypts what the trunk sends the peer: under the trunk's
// first key, then under the key of its answer to the re-INVITE, until the
// socket's deadline. It returns the audio, how many packets came under
// the new key and how many it could not decrypt.
func peerReceive(conn *net.UDPConn, c *InboundCall, first *sdp.SRTPKeys) (pcm []int16, underNew, bad int, err error) {
	newCtx := func(k *sdp.SRTPKeys) (*srtp.Context, error) {
		return srtp.CreateContext(k.LocalKey, k.LocalSalt, k.Profile)
	}
	cur, err := newCtx(first)
	if err != nil {
		return nil, 0, 0, err
	}
	var next *srtp.Context
	buf := make([]byte, 1500)
	var plain []byte
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return pcm, underNew, bad, nil // the deadline the test set
		}
		plain, err = cur.DecryptRTP(plain[:0], buf[:n], nil)
		if err != nil && next == nil {
			if k := c.Media().SRTP; k != nil && !bytes.Equal(k.LocalKey, first.LocalKey) {
				var cerr error
				if next, cerr = newCtx(k); cerr != nil {
					return pcm, underNew, bad, cerr
				}
			}
		}
		if err != nil && next != nil {
			if plain, err = next.DecryptRTP(plain[:0], buf[:n], nil); err == nil {
				underNew++
			}
		}
		if err != nil {
			bad++
			continue
		}
		var p rtp.Packet
		if p.Unmarshal(plain) != nil {
			bad++
			continue
		}
		for _, b := range p.Payload {
			pcm = append(pcm, ulawDecode(b))
		}
	}
}
