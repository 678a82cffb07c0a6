package b2bua

import (
	"context"
	"testing"

	"github.com/tgsip/tgsip/telegram/tgcall"
)

// BenchmarkInviteLogic is what an INVITE costs in this package before
// anything goes to Telegram: route the called party, lease an account,
// and (on failure) map the outcome.
func BenchmarkInviteLogic(b *testing.B) {
	r, err := NewSIPRouter(SIPRouting{
		Numbers: NumberPlan{CountryCode: "49", NationalPrefix: "0"},
		Aliases: map[string]string{"echo": "@echo_bot"},
		Rules: []SIPRule{
			{Prefix: "*7", Rewrite: "$1", As: AsUsername},
			{Prefix: "9", Rewrite: "$1", As: AsPhone},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPool(newAccounts("a", "b", "c", "d"), PoolOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	busy := &tgcall.Error{Cause: tgcall.CauseBusy, Reason: tgcall.DiscardBusy, Remote: true}
	b.ReportAllocs()
	for b.Loop() {
		rt, err := r.Route(Called{RequestUser: "9030 1234567"})
		if err != nil {
			b.Fatal(err)
		}
		l, err := p.Lease(ctx, rt.Prefs)
		if err != nil {
			b.Fatal(err)
		}
		if SIPEndFor(busy).Status != 486 {
			b.Fatal("mapping")
		}
		l.Release()
	}
}
