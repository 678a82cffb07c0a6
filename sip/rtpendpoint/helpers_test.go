package rtpendpoint

import (
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"go.uber.org/goleak"

	"github.com/tgsip/tgsip/sip/sdp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor is the longest any test waits for a packet or a report.
const waitFor = 5 * time.Second

var loopback = netip.MustParseAddr("127.0.0.1")

func listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return unmap(c.LocalAddr().(*net.UDPAddr).AddrPort())
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// newKeys draws SDES keys for suite; with mki both sides use a 1- or
// 4-byte MKI as RFC 4568 §6.1 allows.
func newKeys(t testing.TB, suite sdp.Suite, mki bool) *sdp.SRTPKeys {
	p, ok := suite.Profile()
	if !ok {
		t.Fatalf("suite %s", suite)
	}
	k := &sdp.SRTPKeys{
		Profile:    p,
		LocalKey:   randBytes(t, suite.KeyLen()),
		LocalSalt:  randBytes(t, suite.SaltLen()),
		RemoteKey:  randBytes(t, suite.KeyLen()),
		RemoteSalt: randBytes(t, suite.SaltLen()),
	}
	if mki {
		k.LocalMKI = []byte{7}
		k.RemoteMKI = []byte{0, 0, 1, 2}
	}
	return k
}

// peer is the far end built from pion/srtp and pion/rtcp directly: what a
// PBX would be, on its own UDP sockets.
type peer struct {
	t          testing.TB
	conn, rtcp *net.UDPConn // rtcp nil with rtcp-mux
	epRTP      netip.AddrPort
	epRTCP     netip.AddrPort
	tx, rx     *srtp.Context // SRTP
	txc, rxc   *srtp.Context // SRTCP
	ssrc       uint32
	seq        uint16
	ts         uint32
	pt         uint8
}

// setKeys keys the peer with the mirror of k (its send key is our remote
// key); nil means plain RTP.
func (p *peer) setKeys(k *sdp.SRTPKeys) {
	p.t.Helper()
	if k == nil {
		p.tx, p.rx, p.txc, p.rxc = nil, nil, nil, nil
		return
	}
	mk := func(key, salt, mki []byte, replay bool) *srtp.Context {
		opts := []srtp.ContextOption{}
		if len(mki) > 0 {
			opts = append(opts, srtp.MasterKeyIndicator(mki))
		}
		if replay {
			opts = append(opts, srtp.SRTPReplayProtection(64), srtp.SRTCPReplayProtection(64))
		}
		c, err := srtp.CreateContext(key, salt, k.Profile, opts...)
		if err != nil {
			p.t.Fatal(err)
		}
		return c
	}
	p.tx = mk(k.RemoteKey, k.RemoteSalt, k.RemoteMKI, false)
	p.txc = mk(k.RemoteKey, k.RemoteSalt, k.RemoteMKI, false)
	p.rx = mk(k.LocalKey, k.LocalSalt, k.LocalMKI, true)
	p.rxc = mk(k.LocalKey, k.LocalSalt, k.LocalMKI, true)
}

// packet builds the peer's next plain RTP packet (20 ms of 8 kHz audio).
func (p *peer) packet(payload []byte) []byte {
	p.t.Helper()
	p.seq++
	p.ts += 160
	raw, err := (&rtp.Packet{Header: rtp.Header{
		Version: 2, PayloadType: p.pt, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc,
	}, Payload: payload}).Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	return raw
}

func (p *peer) protect(raw []byte) []byte {
	p.t.Helper()
	if p.tx == nil {
		return raw
	}
	out, err := p.tx.EncryptRTP(nil, raw, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// send sends a packet from the peer's RTP socket and returns its plain form.
func (p *peer) send(payload []byte) []byte {
	p.t.Helper()
	raw := p.packet(payload)
	p.sendRaw(p.conn, p.protect(raw))
	return raw
}

func (p *peer) sendRaw(c *net.UDPConn, b []byte) {
	p.t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, p.epRTP); err != nil {
		p.t.Fatal(err)
	}
}

// sendRTCP protects and sends compound RTCP from the peer's RTCP socket
// (its RTP socket with mux) to the endpoint's RTCP port.
func (p *peer) sendRTCP(pkts ...rtcp.Packet) {
	p.t.Helper()
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		p.t.Fatal(err)
	}
	if p.txc != nil {
		if raw, err = p.txc.EncryptRTCP(nil, raw, nil); err != nil {
			p.t.Fatal(err)
		}
	}
	c, dst := p.conn, p.epRTP
	if p.rtcp != nil {
		c, dst = p.rtcp, p.epRTCP
	}
	if _, err := c.WriteToUDPAddrPort(raw, dst); err != nil {
		p.t.Fatal(err)
	}
}

// recvRTP waits for the next RTP packet on the peer's RTP socket and
// decrypts it; RTCP arriving there (mux) is skipped.
func (p *peer) recvRTP(timeout time.Duration) (rtp.Packet, error) {
	buf := make([]byte, 2048)
	deadline := time.Now().Add(timeout)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return rtp.Packet{}, err
		}
		b := buf[:n]
		if isRTCP(b) {
			continue
		}
		if p.rx != nil {
			if b, err = p.rx.DecryptRTP(nil, b, nil); err != nil {
				return rtp.Packet{}, err
			}
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(append([]byte(nil), b...)); err != nil {
			return rtp.Packet{}, err
		}
		return pkt, nil
	}
}

// recvRTCP waits for compound RTCP on the peer's RTCP socket (RTP socket
// with mux), decrypts and parses it with pion/rtcp.
func (p *peer) recvRTCP(timeout time.Duration) ([]rtcp.Packet, error) {
	c := p.conn
	if p.rtcp != nil {
		c = p.rtcp
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(timeout)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, err
		}
		b := buf[:n]
		if !isRTCP(b) {
			continue
		}
		if p.rxc != nil {
			if b, err = p.rxc.DecryptRTCP(nil, b, nil); err != nil {
				return nil, err
			}
		}
		return rtcp.Unmarshal(b)
	}
}

// pair is an endpoint on its own sockets and a peer that knows its keys.
type pair struct {
	ep     *Endpoint
	peer   *peer
	neg    sdp.Negotiated
	epRTP  *net.UDPConn
	epRTCP *net.UDPConn
}

// newPair makes an endpoint and its peer. keys nil means plain RTP; mutate
// may change the negotiation before the endpoint is made.
func newPair(t testing.TB, keys *sdp.SRTPKeys, mux bool, opt Options, mutate func(*pair)) *pair {
	t.Helper()
	pr := &pair{epRTP: listen(t), epRTCP: listen(t)}
	p := &peer{t: t, conn: listen(t), ssrc: 0x1234abcd, seq: 65500, ts: 1000, pt: 0}
	if !mux {
		p.rtcp = listen(t)
	}
	p.epRTP, p.epRTCP = addrOf(pr.epRTP), addrOf(pr.epRTCP)
	p.setKeys(keys)
	pr.peer = p
	pr.neg = sdp.Negotiated{
		Codec:     sdp.Codec{Name: sdp.PCMU, PayloadType: 0, ClockRate: 8000, Channels: 1},
		DTMF:      &sdp.Codec{Name: sdp.TelephoneEvent, PayloadType: 101, ClockRate: 8000, Channels: 1},
		Remote:    addrOf(p.conn),
		RTCPMux:   mux,
		Direction: sdp.SendRecv,
		PTime:     20,
		SRTP:      keys,
	}
	if mux {
		pr.neg.RemoteRTCP = pr.neg.Remote
	} else {
		pr.neg.RemoteRTCP = addrOf(p.rtcp)
	}
	if opt.RTCPInterval == 0 {
		opt.RTCPInterval = -1 // tests send reports themselves unless they ask
	}
	if mutate != nil {
		mutate(pr)
	}
	rtcpConn := pr.epRTCP
	if mux {
		rtcpConn = nil
	}
	ep, err := New(pr.epRTP, rtcpConn, pr.neg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	pr.ep = ep
	return pr
}

// reader runs ReadRTP in a goroutine and hands over copies of the packets.
type reader struct {
	pkts chan []byte
	err  chan error
}

func startReader(t testing.TB, ep *Endpoint) *reader {
	r := &reader{pkts: make(chan []byte, 4096), err: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, err := ep.ReadRTP(buf)
			if err != nil {
				r.err <- err
				return
			}
			r.pkts <- append([]byte(nil), buf[:n]...)
		}
	}()
	// The endpoint is closed by a cleanup registered before this one, so
	// this one runs first: close here, then wait for the goroutine.
	t.Cleanup(func() {
		ep.Close()
		<-done
	})
	return r
}

var errTimeout = errors.New("timed out")

// next returns the next packet read, parsed.
func (r *reader) next(timeout time.Duration) (rtp.Packet, error) {
	select {
	case b := <-r.pkts:
		var p rtp.Packet
		err := p.Unmarshal(b)
		return p, err
	case err := <-r.err:
		return rtp.Packet{}, err
	case <-time.After(timeout):
		return rtp.Packet{}, errTimeout
	}
}

// rtpPacket is a plain packet as the bridge would write it.
func rtpPacket(t testing.TB, ssrc uint32, seq uint16, ts uint32, payload []byte) []byte {
	raw, err := (&rtp.Packet{Header: rtp.Header{
		Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc,
	}, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
