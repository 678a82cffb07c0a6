package tgcall

import (
	"errors"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/gotd/td/tg"
)

// TestReflectorServerIDs: server ids are numbered over the phoneConnection
// ids only, as tdesktop's CollectEndpointIds does; Telegram numbers
// phoneConnectionWebrtc entries from the same sequence, so webrtc ids sort
// between reflector ids and must not shift them.
func TestReflectorServerIDs(t *testing.T) {
	tag := make([]byte, 16)
	tag[0] = 7
	conns := []tg.PhoneConnectionClass{
		&tg.PhoneConnection{ID: 900, IP: "127.0.0.1", Port: 600, PeerTag: tag},
		&tg.PhoneConnectionWebrtc{ID: -9, IP: "127.0.0.8", Port: 3479, Stun: true},
		&tg.PhoneConnection{ID: -5, IP: "127.0.0.2", Ipv6: "::1", Port: 601, PeerTag: tag},
		&tg.PhoneConnection{ID: 30, IP: "127.0.0.3", Port: 602, PeerTag: tag, TCP: true},
		&tg.PhoneConnection{ID: 31, IP: "127.0.0.4", Port: 603, PeerTag: tag[:5]}, // bad tag: skipped, but its id counts
		&tg.PhoneConnectionWebrtc{ID: 1, IP: "127.0.0.9", Port: 3478, Turn: true, Stun: true, Username: "u", Password: "p"},
	}
	got := reflectors(conns, slog.Default())
	// Sorted phoneConnection ids: -5, 30, 31, 900 → server ids 1, 2, 3, 4;
	// the webrtc ids -9 and 1 do not count.
	want := []struct {
		id   uint8
		addr string
		tcp  bool
	}{
		{4, "127.0.0.1:600", false},
		{1, "127.0.0.2:601", false},
		{1, "[::1]:601", false},
		{2, "127.0.0.3:602", true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d reflectors %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].ServerID != w.id || got[i].Addr != netip.MustParseAddrPort(w.addr) || got[i].TCP != w.tcp || got[i].PeerTag[0] != 7 {
			t.Errorf("reflector %d = %+v, want id %d addr %s tcp %v", i, got[i], w.id, w.addr, w.tcp)
		}
	}
	servers := iceServers(conns)
	if len(servers) != 3 || servers[0].URL != "stun:127.0.0.8:3479" || servers[1].URL != "stun:127.0.0.9:3478" || servers[2].URL != "turn:127.0.0.9:3478?transport=udp" || servers[2].Username != "u" {
		t.Errorf("ice servers %+v", servers)
	}
}

func TestCheckSelected(t *testing.T) {
	versions := []string{"8.0.0", "9.0.0"}
	pc := func(v string, params string) *tg.PhoneCall {
		p := &tg.PhoneCall{Protocol: tg.PhoneCallProtocol{LibraryVersions: []string{v}}}
		if params != "" {
			p.SetCustomParameters(tg.DataJSON{Data: params})
		}
		return p
	}
	for _, tt := range []struct {
		name string
		call *tg.PhoneCall
		want error
	}{
		{"v8", pc("8.0.0", ""), nil},
		{"v9 benign params", pc("9.0.0", `{"network_use_default_route":true,"network_kcp_experiment":false}`), nil},
		{"v12", pc("12.0.0", ""), ErrUnsupportedVersion},
		{"legacy", pc("2.4.4", ""), ErrUnsupportedVersion},
		{"kcp", pc("8.0.0", `{"network_kcp_experiment":true}`), ErrUnsupportedParameter},
		{"mtproto as number", pc("8.0.0", `{"network_use_mtproto":1}`), ErrUnsupportedParameter},
		{"garbage params", pc("8.0.0", `not json`), nil},
		{"none", &tg.PhoneCall{}, ErrUnsupportedVersion},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSelected(tt.call, versions, slog.Default())
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("checkSelected = %v, want %v", err, tt.want)
			}
		})
	}
}
