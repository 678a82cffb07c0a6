// Package wire holds the wire formats of Telegram 1:1 calls as pure
// functions and deterministic state: the Diffie-Hellman checks and key
// fingerprints of the MTProto call handshake, the encryption of
// phone.sendSignalingData payloads, the tgcalls "V2" signaling framing with
// acknowledgements and retransmission, the JSON signaling messages, and the
// datagrams exchanged with Telegram's UDP reflectors.
//
// It sits under the call engine (telegram/tgcall) and the emulated Telegram
// network: the engine owns sockets, goroutines and timers and feeds this
// package bytes and the current time; nothing here blocks, reads a clock or
// talks to the network. Every protocol decision cites the tgcalls or tdlib
// source it follows; known-answer vectors in testdata/ are computed by an
// independent script from those algorithms.
package wire

// Versions are the tgcalls library versions this package implements, in the
// order a caller advertises them in phoneCallProtocol.library_versions. Both
// map to InstanceV2Impl with "V2" signaling (EncryptedConnection framing,
// plain JSON) in tgcalls v2/InstanceV2Impl.cpp signalingProtocolVersion.
var Versions = []string{"8.0.0", "9.0.0"}

// MinLayer and MaxLayer are the phoneCallProtocol layers official clients
// send: tdesktop kMinLayer = 65 and tgcalls Meta::MaxLayer() =
// GetConnectionMaxLayer() = 92.
const (
	MinLayer = 65
	MaxLayer = 92
)
