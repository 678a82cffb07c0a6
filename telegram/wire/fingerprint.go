package wire

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
)

// Key is the 256-byte call key g^(ab) mod p, big-endian and left-padded, as
// both tgcalls (EncryptionKey) and tdlib (CallState.key) hold it.
type Key [256]byte

// Fingerprint is phoneCall.key_fingerprint: bytes 12..19 of SHA-1(key) read
// as a little-endian int64 (tdlib DhHandshake.cpp calc_key_id reads them with
// as<int64> on a little-endian host; tdesktop calls_call.cpp
// ComputeFingerprint builds the same value byte by byte).
func (k *Key) Fingerprint() int64 {
	sum := sha1.Sum(k[:])
	return int64(binary.LittleEndian.Uint64(sum[12:20]))
}

// GAHash is g_a_hash for phone.requestCall: SHA-256 of g_a exactly as it
// is sent in phone.confirmCall (tdlib DhHandshake.cpp get_g_b_hash hashes the
// minimal encoding, set_g_a checks the received bytes as they are).
func GAHash(ga []byte) []byte {
	sum := sha256.Sum256(ga)
	return sum[:]
}

// EmojiFingerprint returns the four emoji both parties compare:
// h = SHA-256(key || g_a), where g_a is the caller's public value on both
// sides (tdlib CallActor.cpp get_emojis_fingerprint with g_b on the caller,
// g_a on the callee), and emoji i = table[(BE64(h[8i:8i+8]) & 0x7FFF…F) mod
// 333] (tdlib misc.cpp get_emoji_fingerprints). tdlib hashes g_a re-encoded
// from its BigNum, i.e. in minimal form, so leading zero bytes of ga are
// dropped here too.
func EmojiFingerprint(k *Key, ga []byte) [4]string {
	for len(ga) > 0 && ga[0] == 0 {
		ga = ga[1:]
	}
	h := sha256.New()
	h.Write(k[:])
	h.Write(ga)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var out [4]string
	for i := range out {
		n := binary.BigEndian.Uint64(sum[8*i:]) & 0x7FFFFFFFFFFFFFFF
		out[i] = emojiTable[n%uint64(len(emojiTable))]
	}
	return out
}
