package emu

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/wire"
)

// confirmedCall runs a call from a to b up to CallActive (b acknowledges,
// accepts; a confirms) and returns the caller's phoneCall.
func confirmedCall(t *testing.T, a, b *tclient) *tg.PhoneCall {
	t.Helper()
	ctx := ctxT(t)
	w, ga, err := requestCall(t, a, b.self.Username)
	if err != nil {
		t.Fatal(err)
	}
	in := tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash}
	waitCall[*tg.PhoneCallRequested](t, b, w.ID)
	if _, err := b.api.PhoneReceivedCall(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := b.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{Peer: in, GB: random256(t), Protocol: protoB}); err != nil {
		t.Fatal(err)
	}
	waitCall[*tg.PhoneCallAccepted](t, a, w.ID)
	res, err := a.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{Peer: in, GA: ga, KeyFingerprint: 77, Protocol: protoA})
	if err != nil {
		t.Fatal(err)
	}
	waitCall[*tg.PhoneCall](t, b, w.ID)
	return res.PhoneCall.(*tg.PhoneCall)
}

func TestCallProtocolOverrides(t *testing.T) {
	n := shnet(t)
	a, b := loggedIn(t, "alice"), loggedIn(t, "carol")
	// By default: both reflectors, the TURN server, no custom parameters.
	pc := confirmedCall(t, a, b)
	var refl, webrtc int
	for _, c := range pc.Connections {
		switch c := c.(type) {
		case *tg.PhoneConnection:
			refl++
		case *tg.PhoneConnectionWebrtc:
			webrtc++
			if !c.Turn || !c.Stun || c.Username == "" || c.Password == "" || c.IP != "127.0.0.1" || c.Port == 0 {
				t.Errorf("TURN entry %+v", c)
			}
		}
	}
	if refl != 2 || webrtc != 1 {
		t.Errorf("connections: %d reflectors, %d webrtc; want 2 and 1", refl, webrtc)
	}
	if _, ok := pc.GetCustomParameters(); ok {
		t.Error("custom parameters without an override")
	}
	hangup(t, a, tg.InputPhoneCall{ID: pc.ID, AccessHash: pc.AccessHash})

	n.Faults().SetCallProtocol(CallProtocol{Version: "12.0.0", CustomParameters: `{"network_kcp_experiment":true}`})
	n.Faults().SetRelays(RelayFaults{NoReflectors: true})
	defer func() {
		n.Faults().SetCallProtocol(CallProtocol{})
		n.Faults().SetRelays(RelayFaults{})
	}()
	pc = confirmedCall(t, a, b)
	if v := pc.Protocol.LibraryVersions; len(v) != 1 || v[0] != "12.0.0" {
		t.Errorf("versions %v, want the override", v)
	}
	if p, ok := pc.GetCustomParameters(); !ok || p.Data != `{"network_kcp_experiment":true}` {
		t.Errorf("custom parameters %+v", p)
	}
	if len(pc.Connections) != 1 {
		t.Errorf("connections %+v, want the TURN server only", pc.Connections)
	}
	for _, c := range pc.Connections {
		if _, ok := c.(*tg.PhoneConnection); ok {
			t.Error("reflector listed while dropped")
		}
	}
	hangup(t, a, tg.InputPhoneCall{ID: pc.ID, AccessHash: pc.AccessHash})
	n.Faults().SetRelays(RelayFaults{NoTURN: true})
	pc = confirmedCall(t, a, b)
	if len(pc.Connections) != 2 {
		t.Errorf("connections %+v, want the two reflectors only", pc.Connections)
	}
	hangup(t, a, tg.InputPhoneCall{ID: pc.ID, AccessHash: pc.AccessHash})
}

// TestReflectorCutOnVanish: the reflectors lose the media of a call one of
// whose parties vanished, as a phone without network would.
func TestReflectorCutOnVanish(t *testing.T) {
	n := shnet(t)
	a, w := loggedIn(t, "alice"), loggedIn(t, "wendy")
	pc := confirmedCall(t, a, w)
	var refl *tg.PhoneConnection
	for _, c := range pc.Connections {
		if r, ok := c.(*tg.PhoneConnection); ok {
			refl = r
			break
		}
	}
	if refl == nil {
		t.Fatal("no reflector")
	}
	server := netip.AddrPortFrom(netip.MustParseAddr(refl.IP), uint16(refl.Port))
	sock := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	sa, sb := sock(), sock()
	tagA, _ := wire.NewTag(refl.PeerTag, 1)
	tagB, _ := wire.NewTag(refl.PeerTag, 2)
	var peer wire.Tag
	copy(peer[:], refl.PeerTag)
	hello := func(c *net.UDPConn, tag wire.Tag) {
		if _, err := c.WriteToUDPAddrPort(wire.AppendHello(nil, tag), server); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatalf("no hello reply: %v", err)
		}
	}
	hello(sa, tagA)
	hello(sb, tagB)
	// send from a to b and report whether b got it within d.
	send := func(d time.Duration) bool {
		if _, err := sa.WriteToUDPAddrPort(wire.AppendReflectorData(nil, peer, 2, 1, []byte("media")), server); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		_ = sb.SetReadDeadline(time.Now().Add(d))
		nb, _, err := sb.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		p, err := wire.ParseFromReflector(buf[:nb])
		return err == nil && string(p.Data) == "media"
	}
	if !send(5 * time.Second) {
		t.Fatal("reflector did not forward before the vanish")
	}
	n.Faults().Vanish(w.self.ID)
	// The cut is synchronous with Vanish: a short read deadline suffices
	// to show nothing arrives.
	if send(300 * time.Millisecond) {
		t.Error("reflector forwarded media of a vanished party")
	}
	n.Faults().Restore(w.self.ID)
	if !send(5 * time.Second) {
		t.Error("reflector did not forward after Restore")
	}
	hangup(t, a, tg.InputPhoneCall{ID: pc.ID, AccessHash: pc.AccessHash})
}
