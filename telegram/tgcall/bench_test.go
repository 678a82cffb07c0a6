package tgcall_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// BenchmarkCallSetup measures one complete call setup through the emulated
// Telegram: phone.requestCall … confirmCall, V2 signaling, ICE and DTLS on
// loopback, until both sides are connected; then the hang-up.
// Run: go test -run '^$' -bench CallSetup -benchtime 20x ./telegram/tgcall/
func BenchmarkCallSetup(b *testing.B) {
	var setup time.Duration
	for i := 0; i < b.N; i++ {
		in := answer(bob)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := alice.engine.Dial(ctx, bob.peer())
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		callee := <-in
		<-out.Connected()
		<-callee.Connected()
		setup += time.Since(start)
		out.Hangup()
		<-out.Done()
		<-callee.Done()
	}
	b.ReportMetric(float64(setup.Milliseconds())/float64(b.N), "ms/setup")
}

// BenchmarkActiveCallMemory measures the heap and goroutines one connected
// call costs (both ends of the call are in this process, and both are
// counted: the figure is per call end, i.e. per trunk channel).
// Run: go test -run '^$' -bench ActiveCallMemory -benchtime 1x ./telegram/tgcall/
func BenchmarkActiveCallMemory(b *testing.B) {
	callers, callees, err := benchPairs()
	if err != nil {
		b.Fatal(err)
	}
	pairs := len(callers)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		before := heap()
		goroutines := runtime.NumGoroutine()
		var calls []*tgcall.Call
		for p := 0; p < pairs; p++ {
			in := answer(callees[p])
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			out, err := callers[p].engine.Dial(dctx, callees[p].peer())
			dcancel()
			if err != nil {
				b.Fatal(err)
			}
			callee := <-in
			<-out.Connected()
			<-callee.Connected()
			calls = append(calls, out, callee)
		}
		after := heap()
		b.ReportMetric(float64(after-before)/float64(2*pairs)/1024, "KiB/call-end")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/float64(2*pairs), "goroutines/call-end")
		for _, c := range calls {
			c.Hangup()
		}
		for _, c := range calls {
			<-c.Done()
		}
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchAccounts are the extra account pairs of BenchmarkActiveCallMemory,
// made once per process and running until TestMain ends.
var benchAccounts struct {
	once             sync.Once
	callers, callees []*account
	err              error
}

func benchPairs() (callers, callees []*account, err error) {
	const pairs = 8
	b := &benchAccounts
	b.once.Do(func() {
		for i := 0; i < pairs; i++ {
			mk := func(role string, n int) *account {
				u, err := network.AddUser(emu.User{Phone: fmt.Sprintf("+1666%03d%d", i, n), FirstName: role})
				if err != nil && b.err == nil {
					b.err = err
				}
				return &account{user: u}
			}
			b.callers = append(b.callers, mk("caller", 1))
			b.callees = append(b.callees, mk("callee", 2))
		}
		if b.err != nil {
			return
		}
		all := append(append([]*account{}, b.callers...), b.callees...)
		b.err = startAccounts(runCtx, &runWG, all)
		extraAccounts = append(extraAccounts, all...)
	})
	return b.callers, b.callees, b.err
}
