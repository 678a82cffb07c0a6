package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testKey() *Key {
	var k Key
	for i := range k {
		k[i] = byte(i*7 + 3)
	}
	return &k
}

// body helpers build plaintext records the way a tgcalls peer would.
func seqRec(seq uint32, kind byte) []byte { return appendSeqRecord(nil, seq, kind) }
func msgRec(seq uint32, msg string) []byte {
	return appendCustomRecord(nil, seq, []byte(msg))
}
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// fromCallee encrypts a body as the callee sends it to the caller.
func fromCallee(k *Key, body []byte) []byte { return EncryptSignaling(k, false, body) }

func TestReceiveRecordLayouts(t *testing.T) {
	k := testKey()
	ack := SeqRequiresAck
	tests := []struct {
		name    string
		body    []byte
		wantErr error
		msgs    []string
	}{
		{"bare service packet (21 bytes)", seqRec(1, recordEmpty), nil, nil},
		{"single message, no ack", msgRec(1|SeqSingleMessage, "a"), nil, []string{"a"}},
		{"ack-requiring message", msgRec(1|ack, "a"), nil, []string{"a"}},
		{"empty + two messages", cat(seqRec(3, recordEmpty), msgRec(1|ack, "a"), msgRec(2|ack, "b")), nil, []string{"a", "b"}},
		{"empty-length message", msgRec(1|ack, ""), nil, []string{""}},
		{"ack first", cat(seqRec(1, recordAck), msgRec(2|ack, "a")), ErrRecords, nil},
		{"empty not first", cat(msgRec(1|ack, "a"), seqRec(2, recordEmpty)), ErrRecords, nil},
		{"single-message bit with more records", cat(msgRec(1|SeqSingleMessage, "a"), msgRec(2|ack, "b")), ErrRecords, nil},
		{"single-message bit on a later record", cat(seqRec(2, recordEmpty), msgRec(1|SeqSingleMessage, "a")), ErrRecords, nil},
		{"trailing bytes shorter than seq+type", cat(msgRec(1|ack, "a"), []byte{0, 0, 0, 2}), ErrRecords, nil},
		{"unknown record type", cat(seqRec(1, 0x01)), ErrRecords, nil},
		{"truncated length", cat(seqRec(1, recordCustom), []byte{0, 0, 1}, []byte("xxxxxxxxxxxxxxxx")), ErrRecords, nil},
		{"length beyond the body", cat(seqRec(1|ack, recordCustom), []byte{0, 0, 0, 99}, []byte("abc")), ErrRecords, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConnection(k, true)
			msgs, _, err := c.Receive(fromCallee(k, tt.body), testEpoch)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Receive: %v, want %v", err, tt.wantErr)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m))
			}
			if !slices.Equal(got, tt.msgs) {
				t.Fatalf("messages %q, want %q", got, tt.msgs)
			}
		})
	}
}

func TestReceiveAppliesAcksBeforeLayoutError(t *testing.T) {
	k := testKey()
	c := NewConnection(k, true)
	if _, err := c.Send([]byte("m1"), testEpoch); err != nil {
		t.Fatal(err)
	}
	// [empty][ack of m1][garbage]: invalid, but tgcalls has applied the ack.
	body := cat(seqRec(1, recordEmpty), seqRec(1|SeqRequiresAck, recordAck), seqRec(2, 0x33))
	if _, _, err := c.Receive(fromCallee(k, body), testEpoch); !errors.Is(err, ErrRecords) {
		t.Fatalf("Receive: %v", err)
	}
	if c.Unacked() != 0 {
		t.Fatalf("Unacked() = %d, the ack before the error must count", c.Unacked())
	}
	// A message in an invalid packet is neither delivered nor acked, so the
	// peer's resend is delivered.
	bad := cat(seqRec(2, recordEmpty), msgRec(1|SeqRequiresAck, "x"), seqRec(3, 0x33))
	if msgs, out, err := c.Receive(fromCallee(k, bad), testEpoch); err == nil || msgs != nil || out != nil {
		t.Fatalf("invalid packet: %q, %d packets, %v", msgs, len(out), err)
	}
	good := cat(seqRec(4, recordEmpty), msgRec(1|SeqRequiresAck, "x"))
	if msgs, out, err := c.Receive(fromCallee(k, good), testEpoch); err != nil || len(msgs) != 1 || len(out) != 1 {
		t.Fatalf("resend: %q, %d packets, %v", msgs, len(out), err)
	}
}

func TestAckNeedsFullSeq(t *testing.T) {
	k := testKey()
	c := NewConnection(k, true)
	if _, err := c.Send([]byte("m1"), testEpoch); err != nil {
		t.Fatal(err)
	}
	bare := cat(seqRec(1, recordEmpty), seqRec(1, recordAck))
	if _, _, err := c.Receive(fromCallee(k, bare), testEpoch); err != nil || c.Unacked() != 1 {
		t.Fatalf("bare counter ack: err %v, Unacked %d; want the message still unacked", err, c.Unacked())
	}
	full := cat(seqRec(2, recordEmpty), seqRec(1|SeqRequiresAck, recordAck))
	if _, _, err := c.Receive(fromCallee(k, full), testEpoch); err != nil || c.Unacked() != 0 {
		t.Fatalf("full seq ack: err %v, Unacked %d", err, c.Unacked())
	}
	if out, next := c.Poll(testEpoch.Add(time.Hour)); out != nil || !next.IsZero() {
		t.Fatalf("Poll after everything acked: %d packets, next %v", len(out), next)
	}
}

func TestReplayWindow(t *testing.T) {
	k := testKey()
	c := NewConnection(k, true)
	recv := func(counter uint32) error {
		_, _, err := c.Receive(fromCallee(k, seqRec(counter, recordEmpty)), testEpoch)
		return err
	}
	steps := []struct {
		counter uint32
		ok      bool
	}{
		{100, true},
		{100, false}, // exact duplicate
		{36, false},  // 36 + 64 <= 100: too old
		{37, true},   // inside the window
		{37, false},
		{99, true},
		{200, true}, // slides the window: 136 and below are forgotten
		{136, false},
		{137, true},
		{MaxCounter, true},
	}
	for _, st := range steps {
		err := recv(st.counter)
		if st.ok != (err == nil) || (err != nil && !errors.Is(err, ErrReplayed)) {
			t.Fatalf("counter %d: %v, want ok=%v", st.counter, err, st.ok)
		}
	}
	if len(c.window) > replayWindow {
		t.Fatalf("window holds %d counters", len(c.window))
	}
}

func TestRepeatedMessageReackedNotRedelivered(t *testing.T) {
	k := testKey()
	c := NewConnection(k, true)
	m := msgRec(5|SeqRequiresAck, "hello")
	msgs, out, err := c.Receive(fromCallee(k, m), testEpoch)
	if err != nil || len(msgs) != 1 || len(out) != 1 {
		t.Fatalf("first copy: %q, %d packets, %v", msgs, len(out), err)
	}
	// The same message resent inside a service packet (new outer counter).
	again := cat(seqRec(6, recordEmpty), m)
	msgs, out, err = c.Receive(fromCallee(k, again), testEpoch.Add(time.Second))
	if err != nil || len(msgs) != 0 || len(out) != 0 {
		t.Fatalf("repeat: %q, %d packets, %v; want no delivery and a delayed ack", msgs, len(out), err)
	}
	out, next := c.Poll(testEpoch.Add(time.Second))
	if len(out) != 0 || !next.Equal(testEpoch.Add(time.Second+AckResendDelay)) {
		t.Fatalf("Poll: %d packets, next %v", len(out), next)
	}
	out, _ = c.Poll(next)
	if len(out) != 1 {
		t.Fatalf("delayed ack: %d packets", len(out))
	}
	body, err := DecryptSignaling(k, false, out[0])
	if err != nil {
		t.Fatal(err)
	}
	want := cat(seqRec(2, recordEmpty), seqRec(5|SeqRequiresAck, recordAck))
	if !bytes.Equal(body, want) {
		t.Fatalf("delayed ack body %x, want %x", body, want)
	}
	// A late copy of an older message, after the peer moved on to 7 (so 5
	// was acked): not delivered, unlike tgcalls' trimmed list.
	if msgs, _, _ := c.Receive(fromCallee(k, msgRec(7|SeqRequiresAck, "next")), testEpoch.Add(2*time.Second)); len(msgs) != 1 {
		t.Fatalf("message 7 not delivered")
	}
	late := cat(seqRec(8, recordEmpty), m)
	if msgs, _, _ := c.Receive(fromCallee(k, late), testEpoch.Add(3*time.Second)); len(msgs) != 0 {
		t.Fatalf("late copy of 5 delivered again")
	}
}

func TestSendLimits(t *testing.T) {
	k := testKey()
	c := NewConnection(k, true)
	largest := MaxSignalingPacket - msgKeySize - 9
	out, err := c.Send(make([]byte, largest), testEpoch)
	if err != nil || len(out) != 1 || len(out[0]) != MaxSignalingPacket {
		t.Fatalf("largest message: %v, %d packets", err, len(out))
	}
	if _, err := c.Send(make([]byte, largest+1), testEpoch); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("one byte more: %v", err)
	}

	c = NewConnection(k, true)
	c.counter = MaxCounter - 1
	if _, err := c.Send([]byte("last"), testEpoch); err != nil {
		t.Fatalf("last counter: %v", err)
	}
	if _, err := c.Send([]byte("more"), testEpoch); !errors.Is(err, ErrCounterExhausted) {
		t.Fatalf("after the last counter: %v", err)
	}
}

// TestQueuedSendsCarryOlderMessages checks the shape of a packet sent while
// messages are unacked, including the packet size limit.
func TestQueuedSendsCarryOlderMessages(t *testing.T) {
	k := testKey()
	c := NewConnection(k, true)
	big := bytes.Repeat([]byte("x"), 6000)
	var last [][]byte
	for i := range 4 {
		out, err := c.Send(big, testEpoch)
		if err != nil || len(out) != 1 {
			t.Fatalf("send %d: %v, %d packets", i, err, len(out))
		}
		last = out
	}
	for _, p := range last {
		if len(p) > MaxSignalingPacket {
			t.Fatalf("packet of %d bytes", len(p))
		}
	}
	body, err := DecryptSignaling(k, false, last[0])
	if err != nil {
		t.Fatal(err)
	}
	recs, err := parseRecords(body)
	if err != nil {
		t.Fatal(err)
	}
	// Counters: m1 1, m2 2 (service 3), m3 4 (service 5), m4 6 (service 7).
	// [service #7][m1 #1][m2 #2]: m3 and m4 do not fit in 16 KiB.
	var seqs []uint32
	for _, r := range recs {
		seqs = append(seqs, r.seq)
	}
	if want := []uint32{7, 1 | SeqRequiresAck, 2 | SeqRequiresAck}; !slices.Equal(seqs, want) || recs[0].kind != recordEmpty {
		t.Fatalf("record seqs %x, want %x", seqs, want)
	}
}

// link simulates the signaling path between two connections: each packet is
// lost with probability loss, duplicated with probability dup, and delayed
// by a random amount, which reorders packets.
type link struct {
	rng      *rand.Rand
	loss     float64
	dup      float64
	maxDelay time.Duration
	inflight []flight
	sent     int
	lost     int
}

type flight struct {
	at  time.Time
	to  int
	pkt []byte
}

func (l *link) send(now time.Time, to int, pkts [][]byte) {
	for _, p := range pkts {
		copies := 1
		if l.rng.Float64() < l.dup {
			copies = 2
		}
		for range copies {
			l.sent++
			if l.rng.Float64() < l.loss {
				l.lost++
				continue
			}
			delay := 20*time.Millisecond + time.Duration(l.rng.Int64N(int64(l.maxDelay)))
			l.inflight = append(l.inflight, flight{at: now.Add(delay), to: to, pkt: p})
		}
	}
}

// TestReliabilityUnderLossAndReordering runs both directions at once over a
// lossy, reordering, duplicating link and checks that each side delivers
// every message of the other exactly once and in the order sent.
func TestReliabilityUnderLossAndReordering(t *testing.T) {
	for seed := range uint64(24) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			runLossySession(t, seed)
		})
	}
}

func runLossySession(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x7467736970))
	k := testKey()
	conns := [2]*Connection{NewConnection(k, true), NewConnection(k, false)}
	net := &link{rng: rng, loss: 0.2, dup: 0.05, maxDelay: 1500 * time.Millisecond}

	// Each side sends n messages at random times in the first minute; some
	// seeds add large messages so queued packets hit the 16 KiB limit.
	const n = 40
	type planned struct {
		at  time.Time
		msg []byte
	}
	var plans [2][]planned
	for side := range 2 {
		for i := range n {
			size := 20 + rng.IntN(200)
			if seed%3 == 0 && i%5 == 0 {
				size = 3000 + rng.IntN(3000)
			}
			msg := fmt.Appendf(nil, `{"side":%d,"n":%d,"pad":"%s"}`, side, i, bytes.Repeat([]byte("p"), size))
			plans[side] = append(plans[side], planned{at: testEpoch.Add(time.Duration(rng.Int64N(int64(time.Minute)))), msg: msg})
		}
		slices.SortStableFunc(plans[side], func(a, b planned) int { return a.at.Compare(b.at) })
	}
	var sent, got [2][][]byte
	var timers [2]time.Time

	deliver := func(now time.Time, from int, pkts [][]byte) {
		for _, p := range pkts {
			if len(p) > MaxSignalingPacket {
				t.Fatalf("side %d sent %d bytes", from, len(p))
			}
		}
		net.send(now, 1-from, pkts)
	}
	refresh := func(now time.Time, side int) {
		out, next := conns[side].Poll(now)
		deliver(now, side, out)
		timers[side] = next
	}

	now := testEpoch
	deadline := testEpoch.Add(2 * time.Hour)
	for {
		done := len(got[0]) == n && len(got[1]) == n && conns[0].Unacked() == 0 && conns[1].Unacked() == 0
		if done {
			break
		}
		// The next event: a planned send, an arrival or a timer.
		next := deadline
		for side := range 2 {
			if len(plans[side]) > 0 && plans[side][0].at.Before(next) {
				next = plans[side][0].at
			}
			if !timers[side].IsZero() && timers[side].Before(next) {
				next = timers[side]
			}
		}
		for _, f := range net.inflight {
			if f.at.Before(next) {
				next = f.at
			}
		}
		if !next.Before(deadline) {
			t.Fatalf("not converged: delivered %d/%d and %d/%d, unacked %d and %d",
				len(got[0]), n, len(got[1]), n, conns[0].Unacked(), conns[1].Unacked())
		}
		if next.Before(now) {
			t.Fatalf("time went backwards")
		}
		now = next

		for side := range 2 {
			for len(plans[side]) > 0 && !plans[side][0].at.After(now) {
				msg := plans[side][0].msg
				plans[side] = plans[side][1:]
				out, err := conns[side].Send(msg, now)
				if err != nil {
					t.Fatalf("side %d Send: %v", side, err)
				}
				sent[side] = append(sent[side], msg)
				deliver(now, side, out)
				refresh(now, side)
			}
		}
		var keep []flight
		var arrived []flight
		for _, f := range net.inflight {
			if f.at.After(now) {
				keep = append(keep, f)
			} else {
				arrived = append(arrived, f)
			}
		}
		net.inflight = keep
		for _, f := range arrived {
			msgs, out, err := conns[f.to].Receive(f.pkt, now)
			if err != nil && !errors.Is(err, ErrReplayed) {
				t.Fatalf("side %d Receive: %v", f.to, err)
			}
			got[f.to] = append(got[f.to], msgs...)
			deliver(now, f.to, out)
			refresh(now, f.to)
		}
		for side := range 2 {
			if !timers[side].IsZero() && !timers[side].After(now) {
				refresh(now, side)
			}
		}
	}
	t.Logf("converged after %v of virtual time, %d packets sent, %d lost", now.Sub(testEpoch), net.sent, net.lost)
	for side := range 2 {
		other := 1 - side
		if len(got[side]) != len(sent[other]) {
			t.Fatalf("side %d delivered %d messages, peer sent %d", side, len(got[side]), len(sent[other]))
		}
		for i := range got[side] {
			if !bytes.Equal(got[side][i], sent[other][i]) {
				t.Fatalf("side %d message %d = %.40s…, want %.40s…", side, i, got[side][i], sent[other][i])
			}
		}
	}
	// With everything acked no timer may keep the engine awake.
	for side := range 2 {
		conns[side].Poll(now.Add(time.Hour))
		if _, next := conns[side].Poll(now.Add(time.Hour)); !next.IsZero() {
			t.Fatalf("side %d still has a timer at %v", side, next)
		}
	}
}

func TestPollNextIsEarliestTimer(t *testing.T) {
	k := testKey()
	c := NewConnection(k, true)
	if out, next := c.Poll(testEpoch); out != nil || !next.IsZero() {
		t.Fatalf("idle connection: %d packets, next %v", len(out), next)
	}
	if _, err := c.Send([]byte("m"), testEpoch); err != nil {
		t.Fatal(err)
	}
	if _, next := c.Poll(testEpoch); !next.Equal(testEpoch.Add(ForcedResendDelay)) {
		t.Fatalf("next = %v", next)
	}
	// Not yet due at the forced resend: sent 0 ms ago < MinResendDelay is
	// false only after 3 s, and the timer fires at 5 s.
	out, next := c.Poll(testEpoch.Add(ForcedResendDelay))
	if len(out) != 1 || !next.Equal(testEpoch.Add(2*ForcedResendDelay)) {
		t.Fatalf("forced resend: %d packets, next %v", len(out), next)
	}
	body, err := DecryptSignaling(k, false, out[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := cat(seqRec(2, recordEmpty), msgRec(1|SeqRequiresAck, "m")); !bytes.Equal(body, want) {
		t.Fatalf("resend body %x, want %x", body, want)
	}
	if binary.BigEndian.Uint32(body)&SeqRequiresAck != 0 {
		t.Fatal("service packet head requires an ack")
	}
}
