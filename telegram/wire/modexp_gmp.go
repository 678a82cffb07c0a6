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
*/
import "C"

import (
	"math/big"
	"unsafe"
)

// modexpGMP is the build's exponentiation for the shared key: GMP.
const modexpGMP = true

// expInto sets out to b^e mod m (big-endian, left-padded to len(out)).
// The shared key's base is new every call (the peer's g_b or g_a), so no
// table helps it as one does g^a (fixedbase.go); what remains is the
// speed of one 2048-bit exponentiation with a 2048-bit exponent, and
// GMP's mpz_powm_sec (sliding windows over Montgomery products with
// dedicated squaring, assembly for this CPU) takes about half of
// math/big's Exp (docs/performance.md, "Load run, session 5"), and unlike
// Exp it runs in constant time. The value is the same (TestExpIntoMatches
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
