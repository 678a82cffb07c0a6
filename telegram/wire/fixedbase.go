package wire

import (
	"math/big"
	"runtime"
	"sync"
)

// A call's own DH public value g^a mod p has a base and a modulus that stay
// the same for every call of the process (Telegram's getDhConfig returns
// g = 3 with TelegramPrime; a client checks and caches the group by
// version, tdlib DhCache), so powers of g can be computed once and every
// g^a after that is a product of table entries: the fixed-base method of
// Brickell, Gordon, McCurley and Wilson ("Fast exponentiation with
// precomputation", EUROCRYPT '92; Yao's variant, Handbook of Applied
// Cryptography §14.6.3, algorithm 14.109). The result is the same number
// (tested against math/big's Exp); the exponent keeps its full 2048 bits,
// as tdlib and tdesktop draw it. With windows of fixedWindow bits a
// 2048-bit exponent takes ceil(2048/6) + 2^6 - 1 = 405 modular
// multiplications instead of math/big's ~2,048 squarings and ~512
// multiplications; the table is 342 values of 256 bytes (~90 KiB) per
// group.

// fixedWindow is the width in bits of the exponent's digits.
const fixedWindow = 6

// fixedYield is how many multiplications exp makes between yields.
const fixedYield = 32

// fixedBits is the largest exponent the table covers: NewExponent draws
// 256 bytes.
const fixedBits = 2048

// fixedTables bounds how many groups get a table: a process talks to one
// Telegram (one group); a server that sent many others gets math/big's
// Exp for them rather than a table each.
const fixedTables = 4

// fixedBase is the table of one (g, p): pow[i] = g^(2^(fixedWindow·i)) mod p.
type fixedBase struct {
	p   *big.Int
	pow []*big.Int
	// The same table for GMP (modexp_gmp.go): every entry as size
	// big-endian bytes, one after the other, and p as size bytes.
	flat   []byte
	pBytes []byte
	size   int
}

var fixed struct {
	mu     sync.Mutex
	tables map[fixedKey]*fixedBase
}

type fixedKey struct {
	g int
	p string // p's big-endian bytes
}

// fixedFor returns the table of (g, p), building it on first use; nil
// when fixedTables groups have one already.
func fixedFor(g int, p *big.Int) *fixedBase {
	k := fixedKey{g, string(p.Bytes())}
	fixed.mu.Lock()
	defer fixed.mu.Unlock()
	if t, ok := fixed.tables[k]; ok {
		return t
	}
	if len(fixed.tables) >= fixedTables {
		return nil
	}
	t := newFixedBase(big.NewInt(int64(g)), p)
	if fixed.tables == nil {
		fixed.tables = map[fixedKey]*fixedBase{}
	}
	fixed.tables[k] = t
	return t
}

// newFixedBase computes the table: each entry is the previous one raised
// to 2^fixedWindow (fixedWindow squarings), ~2,050 multiplications once
// per group, about the cost of one math/big Exp.
func newFixedBase(g, p *big.Int) *fixedBase {
	n := (fixedBits + fixedWindow - 1) / fixedWindow
	t := &fixedBase{p: new(big.Int).Set(p), pow: make([]*big.Int, n)}
	cur := new(big.Int).Mod(g, p)
	q := new(big.Int)
	for i := range n {
		t.pow[i] = new(big.Int).Set(cur)
		for range fixedWindow {
			cur.Mul(cur, cur)
			q.QuoRem(cur, p, cur)
		}
	}
	if modexpGMP {
		t.size = (p.BitLen() + 7) / 8
		t.pBytes = p.Bytes()
		t.flat = make([]byte, n*t.size)
		for i, v := range t.pow {
			v.FillBytes(t.flat[i*t.size : (i+1)*t.size])
		}
	}
	return t
}

// exp returns g^a mod p for 0 <= a < 2^fixedBits (Yao's method: for each
// digit value d from the largest down, B collects the table entries whose
// digit is d and A multiplies B in once per d, so an entry with digit d
// ends up in A d times).
func (t *fixedBase) exp(a *big.Int) *big.Int {
	digits := t.digits(a)
	if modexpGMP {
		return t.fixedExp(digits)
	}
	return t.expGo(digits)
}

// digits returns a's digits of fixedWindow bits, one per table entry.
func (t *fixedBase) digits(a *big.Int) []uint8 {
	words := a.Bits()
	digit := func(i int) int {
		// Bits fixedWindow·i … fixedWindow·(i+1)-1 of a.
		v := 0
		for j := range fixedWindow {
			bit := i*fixedWindow + j
			w := bit / _W
			if w < len(words) && words[w]>>(uint(bit%_W))&1 == 1 {
				v |= 1 << j
			}
		}
		return v
	}
	digits := make([]uint8, len(t.pow))
	for i := range digits {
		digits[i] = uint8(digit(i))
	}
	return digits
}

// expGo is exp's product in Go (math/big), for a build without GMP.
func (t *fixedBase) expGo(digits []uint8) *big.Int {
	one := true // A and B are 1: multiplying by them is skipped
	A, B := big.NewInt(1), big.NewInt(1)
	bOne := true
	q := new(big.Int)
	muls := 0
	mulmod := func(z, x *big.Int) {
		z.Mul(z, x)
		q.QuoRem(z, t.p, z)
		// Let other goroutines run every fixedYield multiplications
		// (~0.1 ms here): a gateway on one CPU (GOMAXPROCS=1) would
		// otherwise hold every other call's signaling for the whole
		// power (~1.5 ms); Go preempts a running goroutine only after
		// 10 ms.
		if muls++; muls%fixedYield == 0 {
			runtime.Gosched()
		}
	}
	for d := 1<<fixedWindow - 1; d >= 1; d-- {
		for i, di := range digits {
			if int(di) != d {
				continue
			}
			if bOne {
				B.Set(t.pow[i])
				bOne = false
				continue
			}
			mulmod(B, t.pow[i])
		}
		if bOne {
			continue
		}
		if one {
			A.Set(B)
			one = false
			continue
		}
		mulmod(A, B)
	}
	return A
}

// _W is the size of a big.Word in bits.
const _W = 32 << (^big.Word(0) >> 63)

// powG returns g^a mod p: from the group's table when a fits it, else
// math/big's Exp.
func powG(g int, p, a *big.Int) *big.Int {
	if a.Sign() >= 0 && a.BitLen() <= fixedBits && p.Sign() > 0 {
		if t := fixedFor(g, p); t != nil {
			return t.exp(a)
		}
	}
	return new(big.Int).Exp(big.NewInt(int64(g)), a, p)
}
