package sip

import (
	"testing"
	"time"
)

func TestParseReason(t *testing.T) {
	tests := []struct {
		in   string
		want Reason
		ok   bool
	}{
		{`Q.850;cause=16;text="Normal call clearing"`, Reason{"Q.850", 16, "Normal call clearing"}, true},
		{`SIP ;cause=200 ;text="Call completed elsewhere"`, Reason{"SIP", 200, "Call completed elsewhere"}, true},
		{`Q.850;cause=17, SIP;cause=486`, Reason{"Q.850", 17, ""}, true},
		{`SIP;text="a;b,c";cause=487`, Reason{"SIP", 487, "a;b,c"}, true},
		{`Q.850;text="x"`, Reason{}, false},
		{`Q.850;cause=abc`, Reason{}, false},
		{``, Reason{}, false},
	}
	for _, tt := range tests {
		got, err := parseReason(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseReason(%q) = %+v, %v; want %+v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	r := Reason{Protocol: "Q.850", Cause: 16, Text: "bad\r\nX-Injected: 1\"q"}
	if s := r.String(); s != `Q.850;cause=16;text="badX-Injected: 1\"q"` {
		t.Errorf("String() = %s", s)
	}
}

func TestParseSessionExpires(t *testing.T) {
	tests := []struct {
		in   string
		want sessionExpires
		ok   bool
	}{
		{"1800", sessionExpires{1800 * time.Second, RefresherNone}, true},
		{"90;refresher=uac", sessionExpires{90 * time.Second, RefresherUAC}, true},
		{" 120 ; Refresher = UAS", sessionExpires{120 * time.Second, RefresherUAS}, true},
		{"4294967295", sessionExpires{maxSessionInterval, RefresherNone}, true},
		{"0", sessionExpires{}, false},
		{"-1", sessionExpires{}, false},
		{"90;refresher=me", sessionExpires{}, false},
		{"", sessionExpires{}, false},
	}
	for _, tt := range tests {
		got, err := parseSessionExpires(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseSessionExpires(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestParseRAck(t *testing.T) {
	if r, err := parseRAck("776656 1 INVITE"); err != nil || r != (rack{776656, 1, "INVITE"}) {
		t.Errorf("got %+v %v", r, err)
	}
	for _, bad := range []string{"", "1 2", "0 1 INVITE", "2147483648 1 INVITE", "x 1 INVITE", "1 x INVITE", "1 2 INVITE extra"} {
		if _, err := parseRAck(bad); err == nil {
			t.Errorf("parseRAck(%q) accepted", bad)
		}
	}
}

func TestParseDTMFInfo(t *testing.T) {
	tests := []struct {
		ct, body string
		want     DTMF
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", DTMF{'5', 160 * time.Millisecond}, true},
		{"application/dtmf-relay; charset=x", "Signal= *\nDuration= 100", DTMF{'*', 100 * time.Millisecond}, true},
		{"application/dtmf-relay", "Signal=11\r\nDuration=250", DTMF{'#', 250 * time.Millisecond}, true},
		{"application/dtmf-relay", "Signal=16", DTMF{'F', 0}, true},
		{"application/dtmf-relay", "Signal=a", DTMF{'A', 0}, true},
		{"application/dtmf", "7", DTMF{'7', 0}, true},
		{"application/dtmf-relay", "Duration=160", DTMF{}, false},
		{"application/dtmf-relay", "Signal=X", DTMF{}, false},
		{"application/dtmf-relay", "Signal=1\nDuration=-3", DTMF{}, false},
		{"application/sdp", "Signal=1", DTMF{}, false},
	}
	for _, tt := range tests {
		got, err := parseDTMFInfo(tt.ct, []byte(tt.body))
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseDTMFInfo(%q, %q) = %+v, %v", tt.ct, tt.body, got, err)
		}
	}
}

func FuzzParseReason(f *testing.F) {
	f.Add(`Q.850;cause=16;text="Normal call clearing"`)
	f.Add(`SIP;cause=200;text="Call completed elsewhere", Q.850;cause=31`)
	f.Add(`SIP;text="\"";cause=1`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseReason(s)
		if err != nil {
			return
		}
		if r.Cause < 0 || r.Protocol == "" {
			t.Fatalf("accepted %+v", r)
		}
		again, err := parseReason(r.String())
		if err == nil && again.Cause != r.Cause {
			t.Fatalf("round trip changed cause: %+v -> %+v", r, again)
		}
	})
}

func FuzzParseSessionExpires(f *testing.F) {
	f.Add("1800;refresher=uac")
	f.Add("90")
	f.Add("120;refresher=uas;x=y")
	f.Fuzz(func(t *testing.T, s string) {
		se, err := parseSessionExpires(s)
		if err != nil {
			return
		}
		if se.Interval <= 0 || se.Interval > maxSessionInterval {
			t.Fatalf("interval %v accepted", se.Interval)
		}
		back, err := parseSessionExpires(se.String())
		if err != nil || back != se {
			t.Fatalf("round trip %+v -> %+v %v", se, back, err)
		}
	})
}

func FuzzParseRSeqRAck(f *testing.F) {
	f.Add("776656", "776656 1 INVITE")
	f.Add("1", "1 314159 INVITE")
	f.Fuzz(func(t *testing.T, rseq, rackv string) {
		if n, err := parseRSeq(rseq); err == nil && (n == 0 || n >= 1<<31) {
			t.Fatalf("RSeq %d accepted", n)
		}
		if r, err := parseRAck(rackv); err == nil && (r.RSeq == 0 || r.Method == "") {
			t.Fatalf("RAck %+v accepted", r)
		}
	})
}

func FuzzParseDTMFInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Add("application/dtmf-relay", []byte("Signal=16\nDuration=65535"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, err := parseDTMFInfo(ct, body)
		if err != nil {
			return
		}
		if _, ok := dtmfDigit(string(d.Digit)); !ok && d.Digit != 'F' {
			t.Fatalf("digit %q accepted", d.Digit)
		}
	})
}
