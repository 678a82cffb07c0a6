package b2bua

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/tgcall"
)

type fakeAccount struct {
	name  string
	ready atomic.Bool
}

func (a *fakeAccount) Name() string { return a.name }
func (a *fakeAccount) Ready() bool  { return a.ready.Load() }

func newAccounts(names ...string) []PoolAccount {
	out := make([]PoolAccount, len(names))
	for i, n := range names {
		a := &fakeAccount{name: n}
		a.ready.Store(true)
		out[i] = a
	}
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestPool(t *testing.T, names ...string) (*Pool, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p, err := NewPool(newAccounts(names...), PoolOptions{Now: c.now, RetryAfter: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

func lease(t *testing.T, p *Pool, prefs LeasePrefs) string {
	t.Helper()
	l, err := p.Lease(context.Background(), prefs)
	if err != nil {
		t.Fatalf("Lease(%+v): %v", prefs, err)
	}
	return l.Account().Name()
}

func noFree(t *testing.T, p *Pool, prefs LeasePrefs) *NoFreeAccountError {
	t.Helper()
	l, err := p.Lease(context.Background(), prefs)
	var nfa *NoFreeAccountError
	if !errors.As(err, &nfa) {
		t.Fatalf("Lease = %v, %v; want *NoFreeAccountError", l, err)
	}
	return nfa
}

func TestNewPoolRejects(t *testing.T) {
	if _, err := NewPool(newAccounts("a", "a"), PoolOptions{}); err == nil {
		t.Error("duplicate names accepted")
	}
	if _, err := NewPool(newAccounts(""), PoolOptions{}); err == nil {
		t.Error("empty name accepted")
	}
}

func TestPoolOneCallPerAccount(t *testing.T) {
	p, _ := newTestPool(t, "a", "b")
	l1, err := p.Lease(context.Background(), LeasePrefs{})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := p.Lease(context.Background(), LeasePrefs{})
	if err != nil {
		t.Fatal(err)
	}
	if l1.Account().Name() == l2.Account().Name() {
		t.Fatalf("both leases got %s", l1.Account().Name())
	}
	nfa := noFree(t, p, LeasePrefs{})
	if nfa.RetryAfter != 20*time.Second || nfa.Considered != 2 {
		t.Errorf("all busy: %+v, want the default 20s over 2", nfa)
	}
	l1.Release()
	l1.Release() // idempotent
	if got := lease(t, p, LeasePrefs{}); got != l1.Account().Name() {
		t.Errorf("after release got %s, want %s", got, l1.Account().Name())
	}
	if _, err := p.Lease(context.Background(), LeasePrefs{}); err == nil {
		t.Error("double Release freed the account twice")
	}
}

// TestPoolStaleRelease: a lease released after its account was leased
// again must not free the new call's account.
func TestPoolStaleRelease(t *testing.T) {
	p, _ := newTestPool(t, "a")
	old, _ := p.Lease(context.Background(), LeasePrefs{})
	old.Release()
	cur, err := p.Lease(context.Background(), LeasePrefs{})
	if err != nil {
		t.Fatal(err)
	}
	old.Release()
	noFree(t, p, LeasePrefs{})
	cur.Release()
	lease(t, p, LeasePrefs{})
}

func TestPoolRoundRobin(t *testing.T) {
	p, _ := newTestPool(t, "a", "b", "c")
	var got []string
	for i := 0; i < 6; i++ {
		l, err := p.Lease(context.Background(), LeasePrefs{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.Account().Name())
		l.Release()
	}
	if fmt.Sprint(got) != "[a b c a b c]" {
		t.Errorf("order %v, want calls spread over the accounts", got)
	}
}

func TestPoolPreferences(t *testing.T) {
	p, _ := newTestPool(t, "a", "b", "c")
	if got := lease(t, p, LeasePrefs{Accounts: []string{"c", "b"}}); got != "c" {
		t.Errorf("preferred c, got %s", got)
	}
	if got := lease(t, p, LeasePrefs{Accounts: []string{"c", "b"}}); got != "b" {
		t.Errorf("c busy: got %s, want b", got)
	}
	if got := lease(t, p, LeasePrefs{Accounts: []string{"c", "b"}}); got != "a" {
		t.Errorf("fallback: got %s, want a", got)
	}
	p2, _ := newTestPool(t, "a", "b")
	lease(t, p2, LeasePrefs{Accounts: []string{"b"}, Only: true})
	nfa := noFree(t, p2, LeasePrefs{Accounts: []string{"b", "nope"}, Only: true})
	if nfa.Considered != 1 {
		t.Errorf("Only considered %d accounts, want 1", nfa.Considered)
	}
}

func TestPoolSkipsNotReady(t *testing.T) {
	accs := newAccounts("a", "b")
	accs[0].(*fakeAccount).ready.Store(false)
	p, err := NewPool(accs, PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lease(t, p, LeasePrefs{Accounts: []string{"a"}}); got != "b" {
		t.Errorf("got %s, want the logged-in b", got)
	}
	nfa := noFree(t, p, LeasePrefs{})
	if nfa.RetryAfter != DefaultRetryAfter {
		t.Errorf("RetryAfter %s, want the default %s", nfa.RetryAfter, DefaultRetryAfter)
	}
}

func TestPoolBackOff(t *testing.T) {
	p, clk := newTestPool(t, "a", "b")
	now := clk.now()
	if err := p.BackOff("a", now.Add(45*time.Second), "FLOOD_WAIT_45"); err != nil {
		t.Fatal(err)
	}
	if err := p.BackOff("a", now.Add(10*time.Second), "FLOOD_WAIT_10"); err != nil {
		t.Fatal(err)
	}
	if err := p.BackOff("b", now.Add(24*time.Hour), "PEER_FLOOD"); err != nil {
		t.Fatal(err)
	}
	if err := p.BackOff("zz", now, "x"); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("BackOff on an unknown account: %v", err)
	}
	nfa := noFree(t, p, LeasePrefs{})
	if nfa.RetryAfter != 45*time.Second {
		t.Errorf("RetryAfter %s, want 45s (the earliest back-off end, not shortened)", nfa.RetryAfter)
	}
	st := p.Status()
	if st[0].BackOffWhy != "FLOOD_WAIT_45" || st[1].BackOffWhy != "PEER_FLOOD" || st[0].InCall {
		t.Errorf("Status = %+v", st)
	}
	clk.add(45 * time.Second)
	if got := lease(t, p, LeasePrefs{}); got != "a" {
		t.Errorf("after the back-off got %s, want a", got)
	}
	// a in a call, b in a day-long back-off: announce the default, not a day.
	nfa = noFree(t, p, LeasePrefs{})
	if nfa.RetryAfter != 20*time.Second {
		t.Errorf("RetryAfter %s, want the 20s default while a call may end sooner", nfa.RetryAfter)
	}
	if st := p.Status(); !st[0].InCall || !st[0].BackOffUntil.IsZero() {
		t.Errorf("Status = %+v", st)
	}
}

func TestPoolLeaseAccount(t *testing.T) {
	p, clk := newTestPool(t, "a")
	if err := p.BackOff("a", clk.now().Add(time.Hour), "FLOOD_WAIT_3600"); err != nil {
		t.Fatal(err)
	}
	l, err := p.LeaseAccount("a")
	if err != nil {
		t.Fatalf("incoming call during back-off: %v", err)
	}
	if _, err := p.LeaseAccount("a"); !errors.Is(err, ErrAccountBusy) {
		t.Errorf("second incoming call: %v, want ErrAccountBusy", err)
	}
	if Classify(ErrAccountBusy) != OutcomeNoAccount {
		t.Error("ErrAccountBusy is not mapped")
	}
	if _, err := p.LeaseAccount("b"); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("unknown account: %v", err)
	}
	l.Release()
	if _, err := p.LeaseAccount("a"); err != nil {
		t.Error(err)
	}
}

func TestPoolLeaseCancelled(t *testing.T) {
	p, _ := newTestPool(t, "a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Lease(ctx, LeasePrefs{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Lease on a cancelled context: %v", err)
	}
	lease(t, p, LeasePrefs{})
}

// TestPoolConcurrent: many goroutines lease and release; no account ever
// carries two calls (run with -race).
func TestPoolConcurrent(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	p, err := NewPool(newAccounts(names...), PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var inUse [4]atomic.Int32
	idx := map[string]int{"a": 0, "b": 1, "c": 2, "d": 3}
	var leased, refused atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				prefs := LeasePrefs{}
				if i%3 == 0 {
					prefs.Accounts = []string{names[g%4]}
				}
				l, err := p.Lease(context.Background(), prefs)
				if err != nil {
					var nfa *NoFreeAccountError
					if !errors.As(err, &nfa) {
						t.Errorf("Lease: %v", err)
						return
					}
					refused.Add(1)
					continue
				}
				k := idx[l.Account().Name()]
				if n := inUse[k].Add(1); n != 1 {
					t.Errorf("%s carries %d calls", l.Account().Name(), n)
				}
				if i%50 == 0 {
					_ = p.BackOff(l.Account().Name(), time.Now().Add(time.Millisecond), "test")
					_ = p.Status()
				}
				inUse[k].Add(-1)
				leased.Add(1)
				l.Release()
			}
		}(g)
	}
	wg.Wait()
	if leased.Load() == 0 {
		t.Fatal("no lease succeeded")
	}
	for _, s := range p.Status() {
		if s.InCall {
			t.Errorf("%s still in a call after every release", s.Name)
		}
	}
	t.Logf("leased %d, refused %d", leased.Load(), refused.Load())
}

func TestPoolObserveError(t *testing.T) {
	p, clk := newTestPool(t, "a", "b", "c")
	now := clk.now()
	flood := &tgcall.Error{Cause: tgcall.CauseFloodWait, RPC: "FLOOD_WAIT", RetryAfter: 90 * time.Second}
	until, ok, err := p.ObserveError("a", fmt.Errorf("dial: %w", flood))
	if err != nil || !ok || !until.Equal(now.Add(90*time.Second)) {
		t.Errorf("FLOOD_WAIT_90: %v %v %v", until, ok, err)
	}
	until, ok, err = p.ObserveError("b", &tgcall.Error{Cause: tgcall.CauseInternal, RPC: "PEER_FLOOD"})
	if err != nil || !ok || !until.Equal(now.Add(DefaultPeerFloodBackOff)) {
		t.Errorf("PEER_FLOOD: %v %v %v", until, ok, err)
	}
	if _, ok, err := p.ObserveError("c", &tgcall.Error{Cause: tgcall.CauseBusy}); ok || err != nil {
		t.Errorf("busy applied a back-off: %v %v", ok, err)
	}
	if _, _, err := p.ObserveError("zz", flood); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("unknown account: %v", err)
	}
	st := p.Status()
	if st[0].BackOffWhy != "FLOOD_WAIT" || st[1].BackOffWhy != "PEER_FLOOD" || !st[2].BackOffUntil.IsZero() {
		t.Errorf("Status = %+v", st)
	}
	if got := lease(t, p, LeasePrefs{}); got != "c" {
		t.Errorf("got %s, want c, the only account not resting", got)
	}
}

// TestPeerFloodBackOffFromTgcall: tgcall's own PEER_FLOOD cause rests the
// account for PeerFloodBackOff, like the RPC name did.
func TestPeerFloodBackOffFromTgcall(t *testing.T) {
	p, clk := newTestPool(t, "a")
	now := clk.now()
	until, ok, err := p.ObserveError("a", fmt.Errorf("dial: %w", &tgcall.Error{Cause: tgcall.CausePeerFlood, RPC: "PEER_FLOOD"}))
	if err != nil || !ok || !until.Equal(now.Add(DefaultPeerFloodBackOff)) {
		t.Errorf("PEER_FLOOD: %v %v %v", until, ok, err)
	}
	if st := p.Status(); st[0].BackOffWhy != "PEER_FLOOD" {
		t.Errorf("Status = %+v", st)
	}
}
