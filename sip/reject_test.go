package sip

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestRejectHeaders sends INVITEs through the UDP listener and checks what
// the caller gets when the b2bua refuses the call: the Q.850 cause in the
// Reason header (RFC 3326, RFC 6432 §2) and, on a 503, Retry-After in
// whole seconds rounded up (RFC 3261 §20.33). Hangup before the answer
// must keep a Q.850 Reason too, and Reject keeps its SIP Reason.
func TestRejectHeaders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		refuse     func(*InboundCall)
		status     int
		reason     string
		retryAfter string // "" means no Retry-After
		end        Reason
	}{
		{
			name: "503 with Retry-After",
			refuse: func(c *InboundCall) {
				c.RejectWith(503, Reason{Protocol: "Q.850", Cause: 34, Text: "No Telegram account free"}, 89500*time.Millisecond)
			},
			status: 503, reason: `Q.850;cause=34;text="No Telegram account free"`, retryAfter: "90",
			end: Reason{Protocol: "Q.850", Cause: 34, Text: "No Telegram account free"},
		},
		{
			name: "486 with Q.850",
			refuse: func(c *InboundCall) {
				c.RejectWith(486, Reason{Protocol: "Q.850", Cause: 17, Text: "User busy"}, 0)
			},
			status: 486, reason: `Q.850;cause=17;text="User busy"`,
			end: Reason{Protocol: "Q.850", Cause: 17, Text: "User busy"},
		},
		{
			name:   "zero Reason",
			refuse: func(c *InboundCall) { c.RejectWith(404, Reason{}, 0) },
			status: 404, reason: `SIP;cause=404`,
			end: Reason{Protocol: "SIP", Cause: 404},
		},
		{
			name:   "Hangup before answer",
			refuse: func(c *InboundCall) { c.Hangup(Reason{Protocol: "Q.850", Cause: 19, Text: "No answer from user"}) },
			status: 480, reason: `Q.850;cause=19;text="No answer from user"`,
			end: Reason{Protocol: "Q.850", Cause: 19, Text: "No answer from user"},
		},
		{
			name:   "Reject",
			refuse: func(c *InboundCall) { c.Reject(603, "Declined") },
			status: 603, reason: `SIP;cause=603;text="Declined"`,
			end: Reason{Protocol: "SIP", Cause: 603, Text: "Declined"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, nil)
			got := calls(s, tc.refuse)
			start(t, s)
			u := newUAC(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tx, err := u.cli.TransactionRequest(ctx, u.invite(s, "reject-"+tc.name))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Terminate()
			var final *sip.Response
			for final == nil {
				select {
				case res := <-tx.Responses():
					if !res.IsProvisional() {
						final = res
					}
				case <-tx.Done():
					t.Fatal("INVITE transaction ended without a final response")
				case <-ctx.Done():
					t.Fatal("no final response")
				}
			}
			if final.StatusCode != tc.status {
				t.Errorf("status %d, want %d", final.StatusCode, tc.status)
			}
			if h := final.GetHeaders("Reason"); len(h) != 1 || h[0].Value() != tc.reason {
				t.Errorf("Reason %v, want one %q", h, tc.reason)
			}
			h := final.GetHeader("Retry-After")
			switch {
			case tc.retryAfter == "" && h != nil:
				t.Errorf("unexpected Retry-After %q", h.Value())
			case tc.retryAfter != "" && (h == nil || h.Value() != tc.retryAfter):
				t.Errorf("Retry-After %v, want %q", h, tc.retryAfter)
			}
			c := waitFor(t, got, "call")
			ce := endOf(t, c)
			if ce.Status != tc.status || ce.Cause != CauseRejected || ce.Reason != tc.end {
				t.Errorf("call ended with %v, want status %d, rejected, reason %v", ce, tc.status, tc.end)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Nanosecond:                "1",
		time.Second:                    "1",
		time.Second + time.Millisecond: "2",
		5 * time.Minute:                "300",
		48 * time.Hour:                 "86400",
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"120":                     120 * time.Second,
		" 18000;duration=3600":    18000 * time.Second,
		"30 (back in a moment)":   30 * time.Second,
		"soon":                    0,
		"":                        0,
		"99999999999999999999999": maxRetryAfter,
		"172800":                  maxRetryAfter,
	} {
		if got := parseRetryAfter(sip.NewHeader("Retry-After", v)); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
	if got := parseRetryAfter(nil); got != 0 {
		t.Errorf("parseRetryAfter(nil) = %v", got)
	}
}
