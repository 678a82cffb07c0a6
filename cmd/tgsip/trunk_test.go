package main

import (
	"net"
	"runtime"
	"testing"

	"github.com/tgsip/tgsip/internal/config"
	"github.com/tgsip/tgsip/telegram/account"
)

// TestTransportFor: Telegram media stays on loopback only when every
// account's server is on loopback (the emulator).
func TestTransportFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
		loop  bool
	}{
		{"emulator", []string{"127.0.0.1:4430", "[::1]:4430"}, true},
		{"telegram", []string{"149.154.167.50:443"}, false},
		{"mixed", []string{"127.0.0.1:4430", "149.154.167.50:443"}, false},
		{"no accounts", nil, false},
	} {
		var c config.Config
		for _, a := range tc.addrs {
			c.Telegram.Accounts = append(c.Telegram.Accounts, account.Config{DCAddress: a})
		}
		tr := transportFor(&c, quiet)
		if tr.IncludeLoopback != tc.loop {
			t.Errorf("%s: IncludeLoopback %v, want %v", tc.name, tr.IncludeLoopback, tc.loop)
		}
		if tc.loop && (tr.IPFilter == nil || tr.IPFilter(net.ParseIP("192.0.2.1")) || !tr.IPFilter(net.ParseIP("127.0.0.1"))) {
			t.Errorf("%s: the IP filter lets other addresses than loopback through", tc.name)
		}
		if !tc.loop && tr.IPFilter != nil {
			t.Errorf("%s: IP filter set for a remote server", tc.name)
		}
	}
}

// TestMediaPortListen: the shared Telegram media port's address as the
// configuration gives it, moved to loopback when the transport stays on
// loopback (the emulator) and the address is unspecified; none when the
// port is not shared.
func TestMediaPortListen(t *testing.T) {
	for _, tc := range []struct {
		listen string
		shared bool
		loop   bool
		want   string
	}{
		{"0.0.0.0:0", true, false, "0.0.0.0:0"},
		{"0.0.0.0:40500", true, true, "127.0.0.1:40500"},
		{"[::]:0", true, true, "[::1]:0"},
		{"127.0.0.1:40500", true, true, "127.0.0.1:40500"},
		{"192.0.2.10:40500", true, false, "192.0.2.10:40500"},
		{"0.0.0.0:0", false, false, ""},
	} {
		var c config.Config
		c.Telegram.MediaPort = config.MediaPort{Shared: tc.shared, Listen: tc.listen}
		if tc.loop {
			c.Telegram.Accounts = []account.Config{{DCAddress: "127.0.0.1:4430"}}
		}
		if got := mediaPortListen(&c, transportFor(&c, quiet)); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc, got, tc.want)
		}
	}
}

// TestPollersFor: the trunk reads its SIP sockets with one Poller per CPU
// the runtime uses (on Linux; none elsewhere).
func TestPollersFor(t *testing.T) {
	ps := pollersFor(transportFor(&config.Config{}, quiet), quiet)
	for _, p := range ps {
		p.Close()
	}
	want := runtime.GOMAXPROCS(0)
	if runtime.GOOS != "linux" {
		want = 0
	}
	if len(ps) != want {
		t.Fatalf("%d pollers, want %d", len(ps), want)
	}
}
