package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/cputime"
)

// TestPublicFixedBase: Public (the table of powers of g) gives math/big's
// g^a mod p for random full-size exponents and for the edges of the
// digit loop (zero, one, all ones, a single digit set, every digit the
// same, a top digit only partly inside 2048 bits), for Telegram's group
// and another 2048-bit safe prime with each generator 2..7.
func TestPublicFixedBase(t *testing.T) {
	rfc, err := hex.DecodeString(rfc3526Group14)
	if err != nil {
		t.Fatal(err)
	}
	allOnes := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), fixedBits), big.NewInt(1))
	edges := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(63), big.NewInt(64),
		allOnes,
		new(big.Int).Lsh(big.NewInt(1), fixedBits-1),
		new(big.Int).Lsh(big.NewInt(1), fixedWindow*(fixedBits/fixedWindow)),
		new(big.Int).Lsh(big.NewInt(5), 600),
	}
	same := new(big.Int)
	for i := 0; i < fixedBits/fixedWindow; i++ {
		same.Lsh(same, fixedWindow).Or(same, big.NewInt(37))
	}
	edges = append(edges, same)
	check := func(name string, g int, p, a *big.Int) {
		t.Helper()
		want := new(big.Int).Exp(big.NewInt(int64(g)), a, p).Bytes()
		got := Public(DHConfig{G: g, P: p}, a)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s g=%d a=%x: got %x, want %x", name, g, a, got, want)
		}
	}
	for _, grp := range []struct {
		name string
		p    []byte
		gs   []int
	}{{"telegram", TelegramPrime, []int{3}}, {"rfc3526", rfc, []int{2, 3, 4, 5, 6, 7}}} {
		p := new(big.Int).SetBytes(grp.p)
		for _, g := range grp.gs {
			for _, a := range edges {
				check(grp.name, g, p, a)
			}
			for range 8 {
				var buf [256]byte
				if _, err := rand.Read(buf[:]); err != nil {
					t.Fatal(err)
				}
				check(grp.name, g, p, new(big.Int).SetBytes(buf[:]))
			}
		}
	}
	// Exponents the table does not cover take math/big's path.
	p := new(big.Int).SetBytes(TelegramPrime)
	check("wide exponent", 3, p, new(big.Int).Lsh(big.NewInt(3), fixedBits+5))
}

// TestFixedBaseBounded: groups beyond fixedTables get no table (math/big
// computes their powers), so a server sending ever new groups cannot grow
// the process.
func TestFixedBaseBounded(t *testing.T) {
	fixed.mu.Lock()
	saved := fixed.tables
	fixed.tables = nil
	fixed.mu.Unlock()
	t.Cleanup(func() {
		fixed.mu.Lock()
		fixed.tables = saved
		fixed.mu.Unlock()
	})
	p := new(big.Int).SetBytes(TelegramPrime)
	for g := 2; g < 2+fixedTables; g++ {
		if fixedFor(g, p) == nil {
			t.Fatalf("group %d of %d has no table", g-1, fixedTables)
		}
	}
	if fixedFor(2+fixedTables, p) != nil {
		t.Fatalf("a table for group %d, want at most %d", fixedTables+1, fixedTables)
	}
	a := big.NewInt(12345)
	if got, want := powG(2+fixedTables, p, a), new(big.Int).Exp(big.NewInt(2+fixedTables), a, p); got.Cmp(want) != 0 {
		t.Fatalf("beyond the tables: got %x, want %x", got, want)
	}
}

// BenchmarkPublic: g^a for a 2048-bit exponent, from the table
// (Public: GMP products in a cgo build; table-math-big: math/big's) and
// with math/big's Exp (what Public did before the table); the shared key
// g_b^a, and its exponentiation alone with GMP (shared-exp) and with
// math/big (shared-exp-math-big, SharedKey before GMP). Each also
// reports cpu-ms/op, the benchmark thread's CPU time (Linux), which a
// busy machine disturbs less than the wall time.
func BenchmarkPublic(b *testing.B) {
	var buf [256]byte
	if _, err := rand.Read(buf[:]); err != nil {
		b.Fatal(err)
	}
	a := new(big.Int).SetBytes(buf[:])
	cfg := DHConfig{G: 3, P: new(big.Int).SetBytes(TelegramPrime)}
	Public(cfg, a) // the table
	tb := fixedFor(3, cfg.P)
	peer := Public(cfg, new(big.Int).Rsh(a, 1))
	gb := new(big.Int).SetBytes(peer)
	var k Key
	for _, bc := range []struct {
		name string
		f    func()
	}{
		{"table", func() { Public(cfg, a) }},
		{"table-math-big", func() { tb.expGo(tb.digits(a)) }},
		{"math-big-exp", func() { new(big.Int).Exp(big.NewInt(3), a, cfg.P).Bytes() }},
		{"shared-key", func() {
			if _, err := SharedKey(cfg, peer, a); err != nil {
				b.Fatal(err)
			}
		}},
		{"shared-exp", func() { expInto(k[:], gb, a, cfg.P) }},
		{"shared-exp-math-big", func() { expIntoBig(k[:], gb, a, cfg.P) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0, ok := cputime.Thread()
			for b.Loop() {
				bc.f()
			}
			if c1, ok1 := cputime.Thread(); ok && ok1 {
				b.ReportMetric(float64(c1-c0)/1e6/float64(b.N), "cpu-ms/op")
			}
		})
	}
}

// BenchmarkKeyBesideTimer: with one P (GOMAXPROCS=1, as the trunk runs
// pinned to one CPU), how late a 1 ms timer fires while another
// goroutine computes shared keys back to back: math/big's Exp holds the
// P for the whole exponentiation (Go preempts only after 10 ms), GMP's
// cgo call gives it up. Run with -benchtime 300x; reports the overshoot's
// p50 and p99 in ms.
func BenchmarkKeyBesideTimer(b *testing.B) {
	cfg := DHConfig{G: 3, P: new(big.Int).SetBytes(TelegramPrime)}
	a, err := rand.Int(rand.Reader, cfg.P)
	if err != nil {
		b.Fatal(err)
	}
	gb := new(big.Int).SetBytes(Public(cfg, new(big.Int).Rsh(a, 1)))
	for _, bc := range []struct {
		name string
		exp  func(out []byte, b, e, m *big.Int)
	}{{"shared-exp", expInto}, {"shared-exp-math-big", expIntoBig}} {
		b.Run(bc.name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				var k Key
				for {
					select {
					case <-stop:
						return
					default:
					}
					bc.exp(k[:], gb, a, cfg.P)
				}
			}()
			var late []time.Duration
			for b.Loop() {
				t0 := time.Now()
				time.Sleep(time.Millisecond)
				late = append(late, time.Since(t0)-time.Millisecond)
			}
			close(stop)
			<-done
			slices.Sort(late)
			q := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))]) / 1e6 }
			b.ReportMetric(q(0.5), "late-p50-ms")
			b.ReportMetric(q(0.99), "late-p99-ms")
		})
	}
}
