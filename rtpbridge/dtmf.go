package rtpbridge

import (
	"encoding/binary"
	"errors"
	"time"
)

// DTMFEvent is one telephone event the bridge saw: an RFC 4733 event from
// the SIP leg or a digit detected in the Telegram leg's audio.
type DTMFEvent struct {
	// Leg the event came from.
	Leg LegID
	// Event is the RFC 4733 §3.2 event code (0-9, 10 '*', 11 '#', 12-15
	// 'A'-'D', 16 flash, ...).
	Event uint8
	// Duration of the event; 0 when its end was never seen.
	Duration time.Duration
	// InBand is true for a digit detected in audio.
	InBand bool
}

// Digit is the event as a keypad character, 0 for non-DTMF events.
func (e DTMFEvent) Digit() byte { return eventDigit(e.Event) }

const dtmfDigits = "0123456789*#ABCD"

func eventDigit(code uint8) byte {
	if int(code) < len(dtmfDigits) {
		return dtmfDigits[code]
	}
	return 0
}

// DigitEvent is the RFC 4733 event code of a keypad character.
func DigitEvent(d byte) (uint8, bool) {
	for i := 0; i < len(dtmfDigits); i++ {
		if dtmfDigits[i] == d || (d >= 'a' && d <= 'd' && dtmfDigits[i] == d-'a'+'A') {
			return uint8(i), true
		}
	}
	return 0, false
}

var errTelephoneEvent = errors.New("rtpbridge: telephone-event payload shorter than 4 bytes")

// telephoneEvent is the payload of RFC 4733 §2.3.
type telephoneEvent struct {
	event    uint8
	end      bool
	volume   uint8 // 0-63, -dBm0
	duration uint16
}

// parseTelephoneEvent reads an RFC 4733 §2.3 payload. Further 4-byte
// blocks (a redundant payload, §2.3 with RFC 2198) are ignored: the first
// block carries the current state.
func parseTelephoneEvent(p []byte) (telephoneEvent, error) {
	if len(p) < 4 {
		return telephoneEvent{}, errTelephoneEvent
	}
	return telephoneEvent{
		event:    p[0],
		end:      p[1]&0x80 != 0,
		volume:   p[1] & 0x3f,
		duration: binary.BigEndian.Uint16(p[2:]),
	}, nil
}

// put writes the 4-byte payload into b (the R bit is sent as 0, §2.3).
func (e telephoneEvent) put(b []byte) {
	b[0] = e.event
	b[1] = e.volume & 0x3f
	if e.end {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], e.duration)
}

// dtmfReceiver turns the packets of RFC 4733 events into one DTMFEvent
// each: packets of an event share its timestamp (§2.5.1.1), the end is
// sent three times (§2.5.1.4), and a new timestamp starts a new event.
type dtmfReceiver struct {
	leg      LegID
	clock    int
	active   bool
	ts       uint32
	ev       telephoneEvent
	reported bool
}

// packet takes one event packet; it returns an event to report, if any,
// and whether this packet starts a new event.
func (r *dtmfReceiver) packet(ts uint32, te telephoneEvent) (out DTMFEvent, report, started bool) {
	if r.active && ts == r.ts && te.event == r.ev.event {
		if r.reported {
			return DTMFEvent{}, false, false // retransmitted end
		}
		if te.duration > r.ev.duration || te.end {
			r.ev.duration, r.ev.end = max(te.duration, r.ev.duration), te.end
		}
	} else {
		if r.active && !r.reported {
			// The previous event's end was lost: report it now (receiver
			// procedures, §2.5.2).
			out, report = r.event(), true
		}
		r.active, r.ts, r.ev, r.reported, started = true, ts, te, false, true
	}
	if r.ev.end && !report {
		r.reported = true
		return r.event(), true, started
	}
	return out, report, started
}

func (r *dtmfReceiver) event() DTMFEvent {
	d := time.Duration(r.ev.duration) * time.Second / time.Duration(max(r.clock, 1))
	return DTMFEvent{Leg: r.leg, Event: r.ev.event, Duration: d}
}

// dtmfSender makes the RFC 4733 packets of one event at a time toward a
// leg: one packet per frame while the event lasts, all with the event's
// start timestamp and a growing duration (§2.5.1.2, §2.5.1.3), then three
// end packets (§2.5.1.4).
type dtmfSender struct {
	active  bool
	event   uint8
	startTS uint32
	dur     uint32
}

// volume is the power level sent in events, -10 dBm0 (§2.3.4 asks for the
// tone's actual level; in-band tones here are made at about that level).
const dtmfVolume = 10

// dtmfEndRepeats is how often an end packet is sent (§2.5.1.4: three).
const dtmfEndRepeats = 3
