//go:build !cgo || nogmp

package wire

import "math/big"

// modexpGMP is the build's exponentiation for the shared key: math/big
// (a build without cgo, or with the nogmp tag).
const modexpGMP = false

// expInto sets out to b^e mod m (big-endian, left-padded to len(out)).
func expInto(out []byte, b, e, m *big.Int) { expIntoBig(out, b, e, m) }

// fixedExp is only called in a GMP build.
func (t *fixedBase) fixedExp([]uint8) *big.Int { panic("wire: no GMP") }
