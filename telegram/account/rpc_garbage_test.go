package account

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"
)

// TestLargeRPCNotGzipped: an RPC over 1 KiB (call signaling is this size,
// and end-to-end encrypted) goes out without gzip_packed, as tdlib sends
// what gzip cannot shrink: no gzip writer (hundreds of KiB, lost from
// gotd's pool at every GC) is made for it.
func TestLargeRPCNotGzipped(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Trunk")
	if _, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	data := make([]byte, 4096) // random-looking, like encrypted signaling
	for i := range data {
		data[i] = byte(i * 131)
	}
	send := func() uint64 {
		runtime.GC()
		runtime.GC() // a sync.Pool is empty after two collections
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		// The emulated Telegram has no such call: only the request's
		// encoding matters here, not the answer.
		_, _ = r.API().PhoneSendSignalingData(rctx, &tg.PhoneSendSignalingDataRequest{
			Peer: tg.InputPhoneCall{ID: 1, AccessHash: 2},
			Data: data,
		})
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	send() // warm up whatever is made once
	n := send()
	t.Logf("a 4 KiB RPC allocated %d KiB", n>>10)
	if n > 200<<10 {
		t.Errorf("a 4 KiB RPC allocated %d KiB: gzip-packed?", n>>10)
	}
}

// TestGotdLogsAllocateNothing: gotd logs through a quiet logger that is
// its own child, so the log.With that gotd runs for every RPC and message
// allocates nothing (with log.Nop it wraps the logger each time).
func TestGotdLogsAllocateNothing(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Trunk")
	if _, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1 // every allocation
	defer func() { runtime.MemProfileRate = rate }()
	for range 5 {
		if _, err := r.API().HelpGetConfig(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC() // the profile is as of the last collection
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+100)
	}
	for _, rec := range recs {
		frames := runtime.CallersFrames(rec.Stack())
		for {
			f, more := frames.Next()
			if strings.HasPrefix(f.Function, "github.com/gotd/log.With") || strings.HasPrefix(f.Function, "github.com/gotd/log.(*withLogger)") {
				t.Fatalf("%d allocations in %s during RPCs", rec.AllocObjects, f.Function)
			}
			if !more {
				break
			}
		}
	}
}
