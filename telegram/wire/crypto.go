package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Sizes of encrypted signaling packets (tgcalls EncryptedConnection.cpp).
const (
	// msgKeySize is the length of the msg_key prefix.
	msgKeySize = 16
	// MinSignalingPacket is the smallest packet tgcalls accepts: msg_key and
	// at least a seq and one record byte (handleIncomingPacket: size < 21).
	MinSignalingPacket = 21
	// MaxIncomingPacket is the largest packet tgcalls tries to decrypt
	// (kMaxIncomingPacketSize = 128 KiB).
	MaxIncomingPacket = 128 * 1024
	// MaxSignalingPacket is the largest packet tgcalls sends over signaling
	// (kMaxSignalingPacketSize = 16 KiB, msg_key included).
	MaxSignalingPacket = 16 * 1024
)

// Errors of DecryptSignaling.
var (
	ErrPacketSize = errors.New("wire: signaling packet size out of range")
	ErrMsgKey     = errors.New("wire: signaling msg_key mismatch")
)

// signalingX is the key offset of tgcalls EncryptedConnection for
// Type::Signaling: 128, plus 8 for packets sent by the callee. The sender
// uses encryptPrepared's x = (isOutgoing ? 0 : 8) + 128 and the receiver
// handleIncomingPacket's mirror x = (isOutgoing ? 8 : 0) + 128, so both ends
// agree on the offset of each direction.
func signalingX(outgoing, sending bool) int {
	if outgoing == sending {
		return 128 // caller→callee direction
	}
	return 136 // callee→caller direction
}

// msgKey computes msg_key = SHA-256(key[88+x : 88+x+32] || body)[8:24]
// (EncryptedConnection.cpp encryptPrepared).
func msgKey(k *Key, x int, body []byte) [msgKeySize]byte {
	h := sha256.New()
	h.Write(k[88+x : 88+x+32])
	h.Write(body)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var mk [msgKeySize]byte
	copy(mk[:], sum[8:24])
	return mk
}

// ctrStream derives the AES-256-CTR key and IV from msg_key as tgcalls
// CryptoHelper.cpp PrepareAesKeyIv does:
//
//	a = SHA-256(msg_key || key[x : x+36])
//	b = SHA-256(key[40+x : 40+x+36] || msg_key)
//	aes_key = a[0:8] || b[8:24] || a[24:32]
//	iv      = b[0:4] || a[8:16] || b[24:28]
//
// AesProcessCtr then runs CTR with a 128-bit big-endian counter block, which
// is what crypto/cipher.NewCTR does.
func ctrStream(k *Key, mk []byte, x int) cipher.Stream {
	ha := sha256.New()
	ha.Write(mk)
	ha.Write(k[x : x+36])
	var a [sha256.Size]byte
	ha.Sum(a[:0])
	hb := sha256.New()
	hb.Write(k[40+x : 40+x+36])
	hb.Write(mk)
	var b [sha256.Size]byte
	hb.Sum(b[:0])

	var key [32]byte
	copy(key[0:8], a[0:8])
	copy(key[8:24], b[8:24])
	copy(key[24:32], a[24:32])
	var iv [16]byte
	copy(iv[0:4], b[0:4])
	copy(iv[4:12], a[8:16])
	copy(iv[12:16], b[24:28])

	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("wire: AES-256 key of 32 bytes rejected: " + err.Error()) // cannot happen
	}
	return cipher.NewCTR(block, iv[:])
}

// EncryptSignaling encrypts a signaling body (seq and records) for
// phone.sendSignalingData: msg_key(16) || AES-256-CTR(body). outgoing tells
// whether this side is the caller. It does not check size limits; the
// Connection keeps packets within MaxSignalingPacket.
func EncryptSignaling(k *Key, outgoing bool, body []byte) []byte {
	x := signalingX(outgoing, true)
	mk := msgKey(k, x, body)
	out := make([]byte, msgKeySize+len(body))
	copy(out, mk[:])
	ctrStream(k, mk[:], x).XORKeyStream(out[msgKeySize:], body)
	return out
}

// DecryptSignaling reverses EncryptSignaling for a packet the peer sent:
// outgoing tells whether this side is the caller. It rejects packets shorter
// than MinSignalingPacket or longer than MaxIncomingPacket, and packets
// whose msg_key does not match the decrypted body (compared in constant
// time, as tgcalls ConstTimeIsDifferent does).
func DecryptSignaling(k *Key, outgoing bool, packet []byte) ([]byte, error) {
	if len(packet) < MinSignalingPacket || len(packet) > MaxIncomingPacket {
		return nil, fmt.Errorf("%w: %d bytes", ErrPacketSize, len(packet))
	}
	x := signalingX(outgoing, false)
	mk := packet[:msgKeySize]
	body := make([]byte, len(packet)-msgKeySize)
	ctrStream(k, mk, x).XORKeyStream(body, packet[msgKeySize:])
	want := msgKey(k, x, body)
	if subtle.ConstantTimeCompare(want[:], mk) != 1 {
		return nil, ErrMsgKey
	}
	return body, nil
}
