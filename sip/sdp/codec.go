package sdp

import (
	"strconv"
	"strings"
)

// Encoding names as the trunk spells them in Codec.Name and Config.Codecs.
// Names from the wire are matched case-insensitively (RFC 4855 §3) and
// stored in this spelling.
const (
	PCMU           = "PCMU"
	PCMA           = "PCMA"
	G722           = "G722"
	Opus           = "opus"
	TelephoneEvent = "telephone-event"
)

// Codec is one RTP payload format of an m-line: the rtpmap (RFC 8866 §6.6)
// and fmtp (§6.15) of one payload type.
type Codec struct {
	// Name is the encoding name; the trunk's own codecs use the constants
	// above, unknown ones keep the peer's spelling.
	Name string
	// PayloadType is the RTP payload type number (0-127).
	PayloadType uint8
	// ClockRate is the RTP timestamp clock. G.722 says 8000 although it
	// samples at 16 kHz (RFC 3551 §4.5.2); Opus always says 48000
	// (RFC 7587 §4.1).
	ClockRate uint32
	// Channels is the channel count of the rtpmap, 1 when omitted
	// (RFC 8866 §6.6); Opus always says 2 (RFC 7587 §7).
	Channels int
	// Fmtp is the format-specific parameter string, "" when absent.
	Fmtp string
}

// String renders "name/rate[/channels]", the rtpmap encoding part.
func (c Codec) String() string {
	s := c.Name + "/" + strconv.FormatUint(uint64(c.ClockRate), 10)
	if c.Channels > 1 {
		s += "/" + strconv.Itoa(c.Channels)
	}
	return s
}

// staticPayloadTypes is the audio half of RFC 3551 §6 Table 4: payload
// types that may appear in an m-line without an rtpmap.
var staticPayloadTypes = [...]Codec{
	0:  {Name: PCMU, ClockRate: 8000, Channels: 1},
	3:  {Name: "GSM", ClockRate: 8000, Channels: 1},
	4:  {Name: "G723", ClockRate: 8000, Channels: 1},
	5:  {Name: "DVI4", ClockRate: 8000, Channels: 1},
	6:  {Name: "DVI4", ClockRate: 16000, Channels: 1},
	7:  {Name: "LPC", ClockRate: 8000, Channels: 1},
	8:  {Name: PCMA, ClockRate: 8000, Channels: 1},
	9:  {Name: G722, ClockRate: 8000, Channels: 1},
	10: {Name: "L16", ClockRate: 44100, Channels: 2},
	11: {Name: "L16", ClockRate: 44100, Channels: 1},
	12: {Name: "QCELP", ClockRate: 8000, Channels: 1},
	13: {Name: "CN", ClockRate: 8000, Channels: 1},
	14: {Name: "MPA", ClockRate: 90000, Channels: 1},
	15: {Name: "G728", ClockRate: 8000, Channels: 1},
	16: {Name: "DVI4", ClockRate: 11025, Channels: 1},
	17: {Name: "DVI4", ClockRate: 22050, Channels: 1},
	18: {Name: "G729", ClockRate: 8000, Channels: 1},
}

// staticCodec returns the RFC 3551 codec of a static payload type.
func staticCodec(pt uint8) (Codec, bool) {
	if int(pt) >= len(staticPayloadTypes) || staticPayloadTypes[pt].Name == "" {
		return Codec{}, false
	}
	c := staticPayloadTypes[pt]
	c.PayloadType = pt
	return c, true
}

// Payload types the trunk uses in its own offers. The static ones are
// RFC 3551's; the dynamic ones (96-127, RFC 3551 §3) follow common practice
// (101 for telephone-event/8000 as Asterisk and FreeSWITCH use, 111 for Opus
// as browsers use) so traces read familiar.
const (
	ptOpus    uint8 = 111
	ptDTMF8k  uint8 = 101
	ptDTMF48k uint8 = 110
)

// Fmtp values the trunk sends. Opus: 10 ms minimum packets and in-band FEC
// are what we can receive (RFC 7587 §6.1). telephone-event: DTMF 0-15 and
// flash (16), RFC 4733 §7.1.1.
const (
	opusFmtp = "minptime=10;useinbandfec=1"
	dtmfFmtp = "0-16"
)

// audioCodecs are the codecs the trunk can carry, in default preference
// order, as it offers them.
var audioCodecs = []Codec{
	{Name: PCMU, PayloadType: 0, ClockRate: 8000, Channels: 1},
	{Name: PCMA, PayloadType: 8, ClockRate: 8000, Channels: 1},
	{Name: G722, PayloadType: 9, ClockRate: 8000, Channels: 1},
	{Name: Opus, PayloadType: ptOpus, ClockRate: 48000, Channels: 2, Fmtp: opusFmtp},
}

// DefaultCodecs is the codec preference used when Config.Codecs is empty.
var DefaultCodecs = []string{PCMU, PCMA, G722, Opus}

// canonicalName returns the trunk's spelling of a supported audio codec
// name, "" for anything else.
func canonicalName(name string) string {
	for _, c := range audioCodecs {
		if strings.EqualFold(c.Name, name) {
			return c.Name
		}
	}
	return ""
}

// ourCodec returns the trunk's definition of a supported codec.
func ourCodec(name string) Codec {
	for _, c := range audioCodecs {
		if c.Name == name {
			return c
		}
	}
	return Codec{}
}

// accepts reports whether an offered format is the supported codec named
// want (canonical spelling): same encoding, RTP clock and channel count.
// G.722 must say 8000 (RFC 3551 §4.5.2); a peer that writes 16000 would
// stamp timestamps we would misread, so it is not taken. Opus is accepted
// whatever channel count is written: RFC 7587 §7 mandates "/2" but the
// stream is the same either way.
func accepts(offered Codec, want string) bool {
	if offered.Name != want {
		return false
	}
	switch want {
	case Opus:
		return offered.ClockRate == 48000
	case PCMU, PCMA, G722:
		return offered.ClockRate == 8000 && offered.Channels == 1
	}
	return false
}

// normalizeName maps a wire encoding name to the trunk's spelling when it
// is one of ours (RFC 4855 §3: names are case-insensitive).
func normalizeName(name string) string {
	if strings.EqualFold(name, TelephoneEvent) {
		return TelephoneEvent
	}
	if c := canonicalName(name); c != "" {
		return c
	}
	return name
}
