package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Seq word of a record (tgcalls EncryptedConnection.cpp): a big-endian
// uint32 whose top two bits are flags and whose low 30 bits are a counter
// shared by all packets and records one side sends.
const (
	// SeqSingleMessage (bit 31) marks a packet holding exactly one record
	// that needs no ack (kSingleMessagePacketSeqBit).
	SeqSingleMessage uint32 = 1 << 31
	// SeqRequiresAck (bit 30) marks a record the peer must acknowledge
	// (kMessageRequiresAckSeqBit). Acks echo the whole seq, this bit
	// included.
	SeqRequiresAck uint32 = 1 << 30
	// MaxCounter is the largest counter a side may use
	// (kMaxAllowedCounter = 2^30 - 1); the connection is spent after it.
	MaxCounter uint32 = 1<<30 - 1
)

// Record type bytes (EncryptedConnection.cpp kAckId, kEmptyId, kCustomId).
const (
	recordAck    byte = 0xFF // ack of the message whose seq precedes it
	recordEmpty  byte = 0xFE // empty head of a service packet
	recordCustom byte = 0x7F // uint32 BE length, then that many bytes (JSON)
)

// maxRecordLength is the largest custom record tgcalls Message.cpp
// DeserializeRawMessage accepts (1 MiB); packets are smaller anyway.
const maxRecordLength = 1024 * 1024

// ErrRecords reports a decrypted packet whose record layout tgcalls rejects
// (EncryptedConnection.cpp processRawPacket).
var ErrRecords = errors.New("wire: invalid signaling record layout")

// counterOf strips the flag bits of a seq word (CounterFromSeq).
func counterOf(seq uint32) uint32 { return seq & MaxCounter }

// record is one parsed record of a signaling body.
type record struct {
	seq  uint32
	kind byte
	data []byte // custom records only; aliases the body
}

// parseRecords splits a decrypted body into records with the checks of
// tgcalls processRawPacket:
//
//	body   = seq(4) record [seq(4) record]...
//	record = 0x7F len(4) bytes | 0xFF | 0xFE
//
// An empty record may only come first and an ack never first; a seq with
// the single-message bit may only head a packet with one record; leftovers
// shorter than seq+type are an error. On error it returns the records
// before the offending one, because tgcalls has already applied the acks
// among them when it gives up.
func parseRecords(body []byte) ([]record, error) {
	if len(body) < 5 {
		return nil, fmt.Errorf("%w: body of %d bytes", ErrRecords, len(body))
	}
	var recs []record
	seq := binary.BigEndian.Uint32(body)
	rest := body[4:]
	additional := false
	for {
		single := seq&SeqSingleMessage != 0
		if single && additional {
			return recs, fmt.Errorf("%w: single-message bit on record %d", ErrRecords, len(recs))
		}
		switch kind := rest[0]; kind {
		case recordEmpty:
			if additional {
				return recs, fmt.Errorf("%w: empty record after the first", ErrRecords)
			}
			rest = rest[1:]
			recs = append(recs, record{seq: seq, kind: kind})
		case recordAck:
			if !additional {
				return recs, fmt.Errorf("%w: ack as first record", ErrRecords)
			}
			rest = rest[1:]
			recs = append(recs, record{seq: seq, kind: kind})
		case recordCustom:
			rest = rest[1:]
			if len(rest) < 4 {
				return recs, fmt.Errorf("%w: truncated record length", ErrRecords)
			}
			n := binary.BigEndian.Uint32(rest)
			rest = rest[4:]
			if n > maxRecordLength || uint64(n) > uint64(len(rest)) {
				return recs, fmt.Errorf("%w: record length %d, %d bytes left", ErrRecords, n, len(rest))
			}
			recs = append(recs, record{seq: seq, kind: kind, data: rest[:n:n]})
			rest = rest[n:]
		default:
			return recs, fmt.Errorf("%w: unknown record type 0x%02x", ErrRecords, kind)
		}
		if len(rest) == 0 {
			return recs, nil
		}
		if single {
			return recs, fmt.Errorf("%w: single-message packet has trailing bytes", ErrRecords)
		}
		if len(rest) < 5 {
			return recs, fmt.Errorf("%w: %d trailing bytes", ErrRecords, len(rest))
		}
		seq = binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		additional = true
	}
}

// appendCustomRecord appends seq || 0x7F || len || msg
// (EncryptedConnection.cpp SerializeRawMessageWithSeq).
func appendCustomRecord(dst []byte, seq uint32, msg []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = append(dst, recordCustom)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg)))
	return append(dst, msg...)
}

// appendSeqRecord appends a one-byte record (ack or empty) with its seq.
func appendSeqRecord(dst []byte, seq uint32, kind byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, seq)
	return append(dst, kind)
}
