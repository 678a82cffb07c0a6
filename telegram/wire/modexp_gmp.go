//go:build cgo && !nogmp

package wire

/*
#cgo LDFLAGS: -lgmp
#include <gmp.h>
#include <string.h>

// tgsip_powm_sec sets out (outLen bytes, big-endian, left-padded) to
// b^e mod m with GMP's side-channel silent mpz_powm_sec. The caller has
// checked m odd and e > 0, as mpz_powm_sec requires; it returns 0 when
// the result does not fit outLen.
static int tgsip_powm_sec(unsigned char *out, size_t outLen,
		const unsigned char *b, size_t bLen,
		const unsigned char *e, size_t eLen,
		const unsigned char *m, size_t mLen) {
	mpz_t zb, ze, zm, zr;
	mpz_inits(zb, ze, zm, zr, NULL);
	mpz_import(zb, bLen, 1, 1, 1, 0, b);
	mpz_import(ze, eLen, 1, 1, 1, 0, e);
	mpz_import(zm, mLen, 1, 1, 1, 0, m);
	mpz_powm_sec(zr, zb, ze, zm);
	int ok = 0;
	size_t n = (mpz_sizeinbase(zr, 2) + 7) / 8;
	if (mpz_sgn(zr) == 0) {
		memset(out, 0, outLen);
		ok = 1;
	} else if (n <= outLen) {
		memset(out, 0, outLen - n);
		mpz_export(out + (outLen - n), NULL, 1, 1, 1, 0, zr);
		ok = 1;
	}
	mpz_clears(zb, ze, zm, zr, NULL);
	return ok;
}

// tgsip_fixed_exp is fixedBase.exp's loop (Yao's method, fixedbase.go)
// over GMP products: table holds n entries of size bytes each
// (big-endian, left-padded), digits one digit per entry; out gets the
// product mod m, size bytes.
static void tgsip_fixed_exp(unsigned char *out, const unsigned char *table,
		const unsigned char *digits, size_t n, size_t size, int maxDigit,
		const unsigned char *m) {
	mpz_t a, b, t, zm;
	mpz_inits(a, b, t, zm, NULL);
	mpz_import(zm, size, 1, 1, 1, 0, m);
	mpz_set_ui(a, 1);
	int bOne = 1; // b carries over from one digit value to the next
	for (int d = maxDigit; d >= 1; d--) {
		for (size_t i = 0; i < n; i++) {
			if (digits[i] != d) {
				continue;
			}
			if (bOne) {
				mpz_import(b, size, 1, 1, 1, 0, table + i*size);
				bOne = 0;
				continue;
			}
			mpz_import(t, size, 1, 1, 1, 0, table + i*size);
			mpz_mul(b, b, t);
			mpz_mod(b, b, zm);
		}
		if (!bOne) {
			mpz_mul(a, a, b);
			mpz_mod(a, a, zm);
		}
	}
	memset(out, 0, size);
	size_t len = (mpz_sizeinbase(a, 2) + 7) / 8;
	mpz_export(out + (size - len), NULL, 1, 1, 1, 0, a);
	mpz_clears(a, b, t, zm, NULL);
}
*/
import "C"

import (
	"math/big"
	"unsafe"
)

// modexpGMP is the build's exponentiation for the shared key: GMP.
const modexpGMP = true

// fixedExp is fixedBase.exp's product of table entries by GMP: the
// same multiplications in C (mpz_mul and mpz_mod take about a third of
// math/big's Mul and QuoRem at 2048 bits), in one cgo call that gives up
// the P, so it needs no yields.
func (t *fixedBase) fixedExp(digits []uint8) *big.Int {
	out := make([]byte, t.size)
	C.tgsip_fixed_exp((*C.uchar)(unsafe.Pointer(&out[0])), (*C.uchar)(unsafe.Pointer(&t.flat[0])),
		(*C.uchar)(unsafe.Pointer(&digits[0])), C.size_t(len(digits)), C.size_t(t.size), C.int(1<<fixedWindow-1),
		(*C.uchar)(unsafe.Pointer(&t.pBytes[0])))
	clear(digits) // the secret exponent's digits
	return new(big.Int).SetBytes(out)
}

// expInto sets out to b^e mod m (big-endian, left-padded to len(out)).
// The shared key's base is new every call (the peer's g_b or g_a), so no
// table helps it as one does g^a (fixedbase.go); what remains is the
// speed of one 2048-bit exponentiation with a 2048-bit exponent, and
// GMP's mpz_powm_sec (Montgomery products with dedicated squaring,
// assembly for this CPU) takes 5–10 % less thread CPU than math/big's Exp
// (docs/performance.md, "Load run, session 5"); unlike Exp it runs in
// constant time, and the cgo call does not hold the P (below). The value is the same (TestExpIntoMatches
// compares it with Exp). Inputs mpz_powm_sec does not take (an even
// modulus, a zero or negative exponent, a negative base) and results too
// long for out go to math/big. A cgo call also gives up its P for the
// duration, so on a gateway with one P the other calls' signaling runs
// while a key is computed (math/big's Exp held it for the ~3 ms).
func expInto(out []byte, b, e, m *big.Int) {
	if m.Bit(0) == 0 || e.Sign() <= 0 || b.Sign() < 0 || len(out) == 0 {
		expIntoBig(out, b, e, m)
		return
	}
	bb, eb, mb := b.Bytes(), e.Bytes(), m.Bytes()
	if len(bb) == 0 {
		bb = []byte{0}
	}
	ok := C.tgsip_powm_sec(
		(*C.uchar)(unsafe.Pointer(&out[0])), C.size_t(len(out)),
		(*C.uchar)(unsafe.Pointer(&bb[0])), C.size_t(len(bb)),
		(*C.uchar)(unsafe.Pointer(&eb[0])), C.size_t(len(eb)),
		(*C.uchar)(unsafe.Pointer(&mb[0])), C.size_t(len(mb)))
	clear(eb) // a copy of the secret exponent
	if ok == 0 {
		expIntoBig(out, b, e, m)
	}
}
