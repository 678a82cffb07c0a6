package media

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
)

// TestRenominationFollowed: the ICE agent a Session builds, as the
// controlled side, follows renomination (draft-thatcher-ice-renomination-01,
// the NOMINATION attribute 0xC001 that libwebrtc sends as
// STUN_ATTR_NOMINATION): after a pair is selected, a higher nomination of a
// lower-priority working pair moves the call there (last nomination wins;
// plain RFC 8445 nomination would keep the higher-priority pair). That is
// what InitialSetup's renomination: true promises a tgcalls caller, whose
// controlling agent renominates only towards a peer that announced it.
//
// The controlling peer is two UDP sockets speaking STUN as libwebrtc does:
// they answer our agent's checks and send nominations.
func TestRenominationFollowed(t *testing.T) {
	if !newSession(t, Config{P2PAllowed: true}).LocalParameters().Renomination {
		t.Error("LocalParameters does not announce renomination")
	}
	discard := slog.New(slog.DiscardHandler)
	opts, _ := agentOptions(loopbackTransport(), &Config{P2PAllowed: true}, discard, pionLoggerFactory{log: discard})
	ours, err := ice.NewAgentWithOptions(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ours.Close() }()
	const peerUfrag, peerPwd = "peerufrag", "peerpasswordpeerpassword"
	oUfrag, oPwd, err := ours.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}

	// Two remote candidates: A with a higher priority than B.
	var socks [2]*net.UDPConn
	var wg sync.WaitGroup
	defer func() {
		for _, s := range socks {
			if s != nil {
				_ = s.Close()
			}
		}
		wg.Wait()
	}()
	for i := range socks {
		if socks[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		prio := 2130706431 - 1000*i
		c, err := ice.UnmarshalCandidate(fmt.Sprintf("candidate:%d 1 udp %d 127.0.0.1 %d typ host", i+1, prio, socks[i].LocalAddr().(*net.UDPAddr).Port))
		if err != nil {
			t.Fatal(err)
		}
		if err := ours.AddRemoteCandidate(c); err != nil {
			t.Fatal(err)
		}
	}
	// Answer our agent's checks on both sockets; checked[i] is closed once
	// socket i has answered one.
	var checked [2]chan struct{}
	for i, sock := range socks {
		checked[i] = make(chan struct{})
		wg.Go(func() {
			var once sync.Once
			buf := make([]byte, 1500)
			for {
				n, from, err := sock.ReadFromUDP(buf)
				if err != nil {
					return
				}
				var req stun.Message
				req.Raw = append([]byte(nil), buf[:n]...)
				if req.Decode() != nil || req.Type != stun.BindingRequest {
					continue
				}
				resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
					&stun.XORMappedAddress{IP: from.IP, Port: from.Port},
					stun.NewShortTermIntegrity(peerPwd), stun.Fingerprint)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := sock.WriteToUDP(resp.Raw, from); err != nil {
					return
				}
				once.Do(func() { close(checked[i]) })
			}
		})
	}
	local := make(chan *net.UDPAddr, 4)
	if err := ours.OnCandidate(func(c ice.Candidate) {
		if c != nil {
			local <- &net.UDPAddr{IP: net.ParseIP(c.Address()), Port: c.Port()}
		}
	}); err != nil {
		t.Fatal(err)
	}
	selected := make(chan int, 16) // the remote port of each selected pair
	if err := ours.OnSelectedCandidatePairChange(func(_, remote ice.Candidate) { selected <- remote.Port() }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	accepted := make(chan error, 1)
	go func() {
		_, err := ours.Accept(ctx, peerUfrag, peerPwd)
		accepted <- err
	}()
	if err := ours.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	var to *net.UDPAddr
	select {
	case to = <-local:
	case <-ctx.Done():
		t.Fatal("no local candidate")
	}
	for i := range checked {
		select {
		case <-checked[i]:
		case <-ctx.Done():
			t.Fatalf("no check on pair %d", i)
		}
	}
	nominate := func(i int, value uint32) {
		req, err := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername(oUfrag+":"+peerUfrag),
			ice.UseCandidate(), ice.AttrControlling(1), ice.PriorityAttr(1862270975),
			ice.NominationSetter{Value: value, AttrType: ice.DefaultNominationAttribute},
			stun.NewShortTermIntegrity(oPwd), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := socks[i].WriteToUDP(req.Raw, to); err != nil {
			t.Fatal(err)
		}
	}
	// Nominate A, then renominate B with a higher value; each is resent
	// with a new, higher value until it takes (checks and their answers
	// cross on the wire, as STUN requests are retransmitted in libwebrtc).
	port := func(i int) int { return socks[i].LocalAddr().(*net.UDPAddr).Port }
	value := uint32(0)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range 2 {
		value++
		nominate(i, value)
	wait:
		for {
			select {
			case p := <-selected:
				if p == port(i) {
					break wait
				}
			case <-tick.C:
				value++
				nominate(i, value)
			case <-ctx.Done():
				t.Fatalf("nomination of pair %d (value %d) not followed", i, value)
			}
		}
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}
