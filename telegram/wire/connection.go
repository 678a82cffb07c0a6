package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Timers of tgcalls EncryptedConnection::DelayIntervalsByType for
// Type::Signaling.
const (
	// MinResendDelay: an unacked message is not resent sooner than this after
	// it was last sent, even when a packet goes out anyway
	// (minDelayBeforeMessageResend).
	MinResendDelay = 3000 * time.Millisecond
	// ForcedResendDelay: when this elapses with messages unacked, a service
	// packet carrying them is sent (maxDelayBeforeMessageResend).
	ForcedResendDelay = 5000 * time.Millisecond
	// AckResendDelay: acks that did not go out immediately (re-acks of
	// repeated messages) are sent in a service packet after this
	// (maxDelayBeforeAckResend).
	AckResendDelay = 5000 * time.Millisecond
)

// Limits of EncryptedConnection.cpp.
const (
	// maxUnacked is kNotAckedMessagesLimit.
	maxUnacked = 64 * 1024
	// replayWindow is kKeepIncomingCountersCount.
	replayWindow = 64
	// maxReceivedTracked bounds the memory of repeated-message detection;
	// a peer never has more unacked messages than maxUnacked.
	maxReceivedTracked = maxUnacked
)

// Errors of Connection.
var (
	ErrMessageTooLarge  = errors.New("wire: signaling message does not fit in a packet")
	ErrTooManyUnacked   = errors.New("wire: too many unacknowledged signaling messages")
	ErrCounterExhausted = errors.New("wire: signaling counter exhausted")
	ErrReplayed         = errors.New("wire: signaling packet already received or too old")
)

// pending is a sent message awaiting its ack: its serialized record (seq
// included) and when it was last put in a packet (zero: send at the next
// opportunity).
type pending struct {
	seq      uint32
	record   []byte
	lastSent time.Time
}

// Connection is one side of the tgcalls "V2" signaling channel
// (EncryptedConnection Type::Signaling driven by InstanceV2Impl for versions
// 8.0.0/9.0.0): JSON messages in custom records that require an ack,
// retransmitted until acked, acknowledged by the receiver, deduplicated and
// delivered once in the order sent. It is a plain state machine: the caller
// passes packets and the current time in and sends the returned packets
// with phone.sendSignalingData; Poll tells when the next timer fires. It is
// not safe for concurrent use.
type Connection struct {
	key      Key
	outgoing bool

	counter uint32 // last counter used; 0 before the first packet

	unacked    []pending // oldest first
	acksToSend []uint32  // full seqs to acknowledge, in arrival order

	// window holds the largest incoming counters, sorted, none more than
	// replayWindow below the largest (registerIncomingCounter).
	window []uint32
	// receivedFloor and received detect repeated ack-requiring messages:
	// every counter below the floor was received, those at or above it are
	// listed in received (sorted).
	receivedFloor uint32
	received      []uint32

	resendAt time.Time // forced resend timer; zero when idle
	ackAt    time.Time // delayed ack timer; zero when idle
}

// NewConnection returns the signaling state of one call. outgoing tells
// whether this side is the caller; it selects the key offsets of each
// direction.
func NewConnection(k *Key, outgoing bool) *Connection {
	return &Connection{key: *k, outgoing: outgoing}
}

// Unacked returns how many sent messages still await an ack.
func (c *Connection) Unacked() int { return len(c.unacked) }

// nextSeq takes the next counter and adds the flags
// (EncryptedConnection::computeNextSeq).
func (c *Connection) nextSeq(requiresAck bool) (uint32, error) {
	if c.counter >= MaxCounter {
		return 0, ErrCounterExhausted
	}
	c.counter++
	seq := c.counter
	if requiresAck {
		seq |= SeqRequiresAck
	}
	return seq, nil
}

// fits is enoughSpaceInPacket: the body plus msg_key and amount more bytes
// stay within MaxSignalingPacket.
func fits(body []byte, amount int) bool {
	return amount < MaxSignalingPacket && msgKeySize+len(body)+amount <= MaxSignalingPacket
}

// Send queues one JSON message (InstanceV2Impl sendRawSignalingMessage →
// prepareForSendingRawMessage(message, true)) and returns the packets to
// send now. The message always requires an ack, so it never carries the
// single-message bit. With nothing unacked it goes out at once as
// [seq|ack-bit][0x7F len msg] followed by pending acks; otherwise it is
// queued behind the unacked ones and a service packet
// [counter][0xFE] + acks + every unacked message (original seqs, oldest
// first) is returned instead, because tgcalls requires ack-requiring
// messages to travel in order within one packet.
func (c *Connection) Send(msg []byte, now time.Time) ([][]byte, error) {
	if !fits(nil, 4+1+4+len(msg)) {
		return nil, fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, len(msg))
	}
	if len(c.unacked) >= maxUnacked {
		return nil, ErrTooManyUnacked
	}
	seq, err := c.nextSeq(true)
	if err != nil {
		return nil, err
	}
	rec := appendCustomRecord(nil, seq, msg)
	if len(c.unacked) == 0 {
		body := append([]byte(nil), rec...)
		body = c.appendAdditional(body, now)
		c.unacked = append(c.unacked, pending{seq: seq, record: rec, lastSent: now})
		// tgcalls arms the forced resend only when a packet goes out with
		// older messages unacked, so a lone message whose packet is lost
		// waits for unrelated traffic. Arming it here as well costs at most
		// a resend the peer dedupes.
		c.armResend(now)
		return [][]byte{c.encrypt(body)}, nil
	}
	c.unacked = append(c.unacked, pending{seq: seq, record: rec})
	for i := range c.unacked {
		c.unacked[i].lastSent = time.Time{}
	}
	return c.service(now), nil
}

// armResend starts the forced resend timer unless it runs already.
func (c *Connection) armResend(now time.Time) {
	if c.resendAt.IsZero() {
		c.resendAt = now.Add(ForcedResendDelay)
	}
}

// appendAdditional is appendAdditionalMessages: the acks that fit, then the
// unacked messages in order as long as each is due (last sent at least
// MinResendDelay ago) and fits; the first one that is not stops the loop so
// the order is kept.
func (c *Connection) appendAdditional(body []byte, now time.Time) []byte {
	n := 0
	for _, seq := range c.acksToSend {
		if !fits(body, 5) {
			break
		}
		body = appendSeqRecord(body, seq, recordAck)
		n++
	}
	c.acksToSend = slices.Delete(c.acksToSend, 0, n)
	if len(c.acksToSend) == 0 {
		c.ackAt = time.Time{}
	}

	if len(c.unacked) == 0 {
		return body
	}
	for i := range c.unacked {
		p := &c.unacked[i]
		if !p.lastSent.IsZero() && p.lastSent.Add(MinResendDelay).After(now) {
			break
		}
		if !fits(body, len(p.record)) {
			break
		}
		body = append(body, p.record...)
		p.lastSent = now
	}
	c.armResend(now)
	return body
}

// service builds a service packet (prepareForSendingService):
// [counter, no flags][0xFE] + acks + due unacked messages. Unlike tgcalls it
// sends nothing, and spends no counter, when there is nothing to carry.
func (c *Connection) service(now time.Time) [][]byte {
	if len(c.unacked) == 0 && len(c.acksToSend) == 0 {
		return nil
	}
	if c.counter >= MaxCounter {
		return nil
	}
	body := appendSeqRecord(nil, 0, recordEmpty) // seq patched below
	body = c.appendAdditional(body, now)
	if len(body) == 5 {
		return nil
	}
	seq, err := c.nextSeq(false)
	if err != nil {
		return nil
	}
	binary.BigEndian.PutUint32(body, seq)
	return [][]byte{c.encrypt(body)}
}

func (c *Connection) encrypt(body []byte) []byte {
	return EncryptSignaling(&c.key, c.outgoing, body)
}

// Poll runs the timers due at now and returns the packets to send and the
// time of the next timer (zero when none is armed). The forced resend
// (ForcedResendDelay) sends the unacked messages last sent at least
// MinResendDelay ago; the ack timer (AckResendDelay) sends acks still
// waiting.
func (c *Connection) Poll(now time.Time) (out [][]byte, next time.Time) {
	if !c.resendAt.IsZero() && !now.Before(c.resendAt) {
		c.resendAt = time.Time{}
		out = append(out, c.service(now)...)
	}
	if !c.ackAt.IsZero() && !now.Before(c.ackAt) {
		c.ackAt = time.Time{}
		out = append(out, c.service(now)...)
	}
	if len(c.acksToSend) > 0 && c.ackAt.IsZero() {
		// Acks that did not fit wait for the next timer instead of the next
		// incoming packet.
		c.ackAt = now.Add(AckResendDelay)
	}
	return out, c.next()
}

// next is the earliest armed timer.
func (c *Connection) next() time.Time {
	switch {
	case c.resendAt.IsZero():
		return c.ackAt
	case c.ackAt.IsZero() || c.resendAt.Before(c.ackAt):
		return c.resendAt
	default:
		return c.ackAt
	}
}

// Receive decrypts and processes one packet from the peer
// (handleIncomingRawPacket + processRawPacket). It returns the messages
// delivered for the first time, in order, and packets to send now: an
// immediate service packet with acks when a new ack-requiring message
// arrived. Repeated messages are acked again (after AckResendDelay, as in
// tgcalls) but not delivered again. Errors: ErrPacketSize, ErrMsgKey and
// ErrReplayed for packets to drop, ErrRecords for a bad layout; acks that
// precede a layout error are still applied, as tgcalls does, but messages
// in such a packet are neither acked nor delivered, so the peer resends them
// (tgcalls would ack and lose them).
func (c *Connection) Receive(packet []byte, now time.Time) (msgs [][]byte, out [][]byte, err error) {
	body, err := DecryptSignaling(&c.key, c.outgoing, packet)
	if err != nil {
		return nil, nil, err
	}
	packetCounter := counterOf(binary.BigEndian.Uint32(body))
	if !c.registerIncoming(packetCounter) {
		return nil, nil, fmt.Errorf("%w: counter %d", ErrReplayed, packetCounter)
	}
	recs, perr := parseRecords(body)
	for _, r := range recs {
		if r.kind == recordAck {
			c.ackMine(r.seq)
		}
	}
	if perr != nil {
		return nil, nil, perr
	}

	firstRequiringAck := true
	newRequiringAck := false
	for i, r := range recs {
		if r.kind != recordCustom {
			continue
		}
		counter := counterOf(r.seq)
		var fresh bool
		if r.seq&SeqRequiresAck != 0 {
			fresh = c.registerReceived(counter, firstRequiringAck)
			firstRequiringAck = false
			newRequiringAck = newRequiringAck || fresh
			c.queueAck(r.seq)
		} else {
			// A record without the ack bit is deduplicated by its counter;
			// the head record's counter was registered with the packet.
			fresh = i == 0 || c.registerIncoming(counter)
		}
		if fresh {
			msgs = append(msgs, r.data)
		}
	}

	if len(c.acksToSend) > 0 {
		if newRequiringAck {
			out = c.service(now)
		} else if c.ackAt.IsZero() {
			c.ackAt = now.Add(AckResendDelay)
		}
	}
	return msgs, out, nil
}

// registerIncoming is registerIncomingCounter: it rejects a counter seen
// before or replayWindow or more below the largest one, and keeps the
// window sorted and trimmed.
func (c *Connection) registerIncoming(counter uint32) bool {
	pos, found := slices.BinarySearch(c.window, counter)
	if found {
		return false
	}
	if n := len(c.window); n > 0 && uint64(counter)+replayWindow <= uint64(c.window[n-1]) {
		return false
	}
	c.window = slices.Insert(c.window, pos, counter)
	drop := 0
	for drop < len(c.window) && uint64(c.window[drop])+replayWindow <= uint64(counter) {
		drop++
	}
	c.window = slices.Delete(c.window, 0, drop)
	return true
}

// registerReceived reports whether an ack-requiring message is new. tgcalls
// registerSentAck forgets every counter below the first ack-requiring record
// of a packet: a sender puts its oldest unacked message first, so everything
// older was acked, i.e. received. This keeps that knowledge as a floor, so
// a late copy of such a message is recognised as repeated instead of being
// delivered twice (which tgcalls does when its list was trimmed).
func (c *Connection) registerReceived(counter uint32, firstInPacket bool) bool {
	if counter < c.receivedFloor {
		return false
	}
	if firstInPacket && counter > c.receivedFloor {
		c.receivedFloor = counter
		cut, _ := slices.BinarySearch(c.received, counter)
		c.received = slices.Delete(c.received, 0, cut)
	}
	pos, found := slices.BinarySearch(c.received, counter)
	if found {
		return false
	}
	c.received = slices.Insert(c.received, pos, counter)
	if len(c.received) > maxReceivedTracked {
		// Only a misbehaving peer gets here; raising the floor keeps memory
		// bounded at the cost of treating its oldest gaps as received.
		c.receivedFloor = c.received[1]
		c.received = slices.Delete(c.received, 0, 1)
	}
	return true
}

// queueAck is sendAckPostponed: remember to ack seq (the full seq word,
// flags included) unless already queued.
func (c *Connection) queueAck(seq uint32) {
	if !slices.Contains(c.acksToSend, seq) {
		c.acksToSend = append(c.acksToSend, seq)
	}
}

// ackMine is ackMyMessage: drop the unacked message whose full seq equals
// the ack. An ack of the bare counter matches nothing, as in tgcalls.
func (c *Connection) ackMine(seq uint32) {
	for i, p := range c.unacked {
		if p.seq == seq {
			c.unacked = slices.Delete(c.unacked, i, i+1)
			break
		}
	}
	if len(c.unacked) == 0 {
		c.resendAt = time.Time{}
	}
}
