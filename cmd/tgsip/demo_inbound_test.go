package main

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/demo"
	"github.com/tgsip/tgsip/sip"
)

// TestDemoInboundToPBXHangsUp: --inbound-to a sipp UAS that answers,
// echoes RTP for 5 s and then hangs up with its own BYE. The demo user
// (tone) heard its 1 kHz come back, and the PBX's BYE ends the Telegram
// call too: the demo reports the call's end while it still runs, and the
// emulator's call is discarded by the trunk's account (the callee), so
// nothing is left on either network before the demo is stopped.
func TestDemoInboundToPBXHangsUp(t *testing.T) {
	port := freeSIPPort(t)
	wait := startSipp(t, port, "", "-sf", filepath.Join("testdata", "sipp", "uas_echo_bye.xml"), "-rtp_echo", "-d", "5000")
	d, n := startDemoNetwork(t, "--inbound-to", fmt.Sprintf("sip:2000@127.0.0.1:%d", port))
	ended := make(chan error, 1)
	go func() { ended <- wait() }()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("sipp: %v\n%s", err, d.logs.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("sipp did not hang up\n%s", d.logs.String())
	}
	final := regexp.MustCompile(`inbound call ended; the demo user heard: (\d+) packets, dominant (\d+) Hz \(prominence ([\d.]+)\)`)
	if !d.out.waitFor("inbound call ended", 15*time.Second) {
		t.Fatalf("the PBX's BYE did not end the demo user's call\n%s\n%s", d.out.String(), d.logs.String())
	}
	m := final.FindStringSubmatch(d.out.String())
	if m == nil {
		t.Fatalf("no final report:\n%s", d.out.String())
	}
	var f, prom float64
	fmt.Sscan(m[2], &f)
	fmt.Sscan(m[3], &prom)
	if math.Abs(f-1000) > 20 || prom < 20 {
		t.Errorf("the demo user heard %v Hz (prominence %.1f), want its 1 kHz back", f, prom)
	}
	calls := waitTelegramIdle(t, n, 1)
	if c := calls[0]; c.DiscardedBy != c.ParticipantID || c.AdminID != demoUserID(t, n, "tone") {
		t.Errorf("Telegram call %d -> %d discarded by %d, want tone's call discarded by the trunk's account", c.AdminID, c.ParticipantID, c.DiscardedBy)
	}
	d.stop()
	if c := d.wait(t, 15*time.Second); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
}

// TestDemoInboundCallerIdentity: a Telegram user's call reaches the PBX
// presented as the trunk's account knows the user from the call's update
// (its user cache): X-Telegram-User-Id, X-Telegram-Username and
// X-Telegram-Phone, the From user +E.164 and the display name from the
// user's name. The PBX declines; the demo user's call ends.
func TestDemoInboundCallerIdentity(t *testing.T) {
	got := make(chan *sip.InboundCall, 1)
	f := func(c *sip.InboundCall) {
		got <- c
		c.Reject(486, "Busy Here")
	}
	pbxOnCall.Store(&f)
	defer pbxOnCall.Store(nil)
	pbx := newPBX(t, 35600)
	pbxAddr, _ := pbx.Addr(sip.UDP)
	d, n := startDemoNetwork(t, "--inbound-to", "sip:2000@"+pbxAddr.String())
	var in *sip.InboundCall
	select {
	case in = <-got:
	case <-time.After(30 * time.Second):
		t.Fatalf("the PBX got no call\n%s", d.logs.String())
	}
	var tone demo.Entry
	for _, e := range demo.Directory() {
		if e.Name == "tone" {
			tone = e
		}
	}
	id := demoUserID(t, n, "tone")
	for h, want := range map[string]string{
		"X-Telegram-User-Id":  fmt.Sprint(id),
		"X-Telegram-Username": tone.Username,
		"X-Telegram-Phone":    tone.Phone,
	} {
		if v := in.Header(h); v != want {
			t.Errorf("%s: %q, want %q", h, v, want)
		}
	}
	u, _ := n.User(id)
	if name := u.FirstName + " " + u.LastName; in.CallerID != tone.Phone || in.CallerName != name {
		t.Errorf("caller %q %q, want %q %q", in.CallerName, in.CallerID, name, tone.Phone)
	}
	waitTelegramIdle(t, n, 1)
	d.stop()
	if c := d.wait(t, 15*time.Second); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
}
