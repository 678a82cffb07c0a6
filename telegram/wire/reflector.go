package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Tag is a 16-byte reflector tag: the first 12 bytes of the call's
// phoneConnection.peer_tag followed by a 4-byte random that identifies one
// endpoint (tgcalls v2/ReflectorPort.cpp: peer_tag_ = rawPeerTag[0:12] ||
// randomTag_, the random copied in host, i.e. little-endian, byte order).
type Tag [16]byte

// NewTag builds an endpoint's tag from the 16-byte peer_tag of a
// phoneConnection and its random (non-zero in tgcalls).
func NewTag(peerTag []byte, random uint32) (Tag, error) {
	var t Tag
	if len(peerTag) != len(t) {
		return t, fmt.Errorf("%w: peer tag of %d bytes, want 16", ErrReflector, len(peerTag))
	}
	copy(t[:12], peerTag)
	binary.LittleEndian.PutUint32(t[12:], random)
	return t, nil
}

// Random returns the endpoint random in the last four bytes.
func (t Tag) Random() uint32 { return binary.LittleEndian.Uint32(t[12:]) }

// SameCall reports whether two tags share the 12-byte call part, the only
// part tgcalls checks on packets from the reflector.
func (t Tag) SameCall(u Tag) bool { return [12]byte(t[:12]) == [12]byte(u[:12]) }

// ErrReflector reports a malformed reflector datagram or hostname.
var ErrReflector = errors.New("wire: invalid reflector datagram")

const (
	reflectorHeader = 16 + 4 + 4 // tag, sender random, length
	// serviceMarker is the offset of the 0xFF×12 run that marks hellos to
	// and service packets from the reflector.
	serviceMarker = 16
)

// helloMagic is what follows the tag in a hello/ping
// (ReflectorPort::SendReflectorHello): 0xFF×12, 0xFE 0xFF 0xFF 0xFF, then
// uint64 123 in network order; 40 bytes in all, already a multiple of 4.
var helloMagic = [24]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xfe, 0xff, 0xff, 0xff,
	0, 0, 0, 0, 0, 0, 0, 123,
}

// isServiceRun reports whether b has 0xFF×12 at serviceMarker.
func isServiceRun(b []byte) bool {
	if len(b) < serviceMarker+12 {
		return false
	}
	for _, c := range b[serviceMarker : serviceMarker+12] {
		if c != 0xff {
			return false
		}
	}
	return true
}

// pad4 appends zero bytes up to a multiple of 4 bytes, as tgcalls pads
// every datagram to the reflector.
func pad4(dst []byte, start int) []byte {
	for (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// AppendHello appends the hello/ping a client sends to its reflector from
// its own tag: every 500 ms until the first reply, then every 10 s
// (ReflectorPort::SendReflectorHello). The reply makes the port ready.
func AppendHello(dst []byte, own Tag) []byte {
	dst = append(dst, own[:]...)
	return append(dst, helloMagic[:]...)
}

// AppendReflectorData appends a datagram carrying data to the endpoint
// whose random is remoteRandom (ReflectorPort::SendTo):
// peerTag[0:12] || remoteRandom (LE) || ownRandom (LE) || uint32 BE
// len(data) || data || zero padding to 4 bytes.
func AppendReflectorData(dst []byte, peerTag Tag, remoteRandom, ownRandom uint32, data []byte) []byte {
	start := len(dst)
	dst = append(dst, peerTag[:12]...)
	dst = binary.LittleEndian.AppendUint32(dst, remoteRandom)
	dst = binary.LittleEndian.AppendUint32(dst, ownRandom)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(data)))
	dst = append(dst, data...)
	return pad4(dst, start)
}

// ReflectorPacket is a datagram a client received from its reflector.
type ReflectorPacket struct {
	// Tag is the tag it was addressed to; the client drops the datagram
	// unless Tag.SameCall(own) holds.
	Tag Tag
	// SenderRandom identifies the sending endpoint: data appears to come
	// from ReflectorHostname(serverID, SenderRandom).
	SenderRandom uint32
	// Data is the payload (STUN, DTLS, SRTP …); it aliases the input.
	Data []byte
	// Service is set for datagrams with nothing to deliver: replies to
	// hellos (0xFF×12 after the tag) and datagrams too short to carry
	// data. Any datagram with the right tag still marks the port ready.
	Service bool
}

// ParseFromReflector parses a datagram from a reflector as
// ReflectorPort::HandleIncomingPacket does: at least the 16-byte tag;
// datagrams longer than 24 bytes without the service run carry
// senderRandom (LE) and a big-endian length that must fit the datagram
// (trailing padding is ignored).
func ParseFromReflector(b []byte) (ReflectorPacket, error) {
	var p ReflectorPacket
	if len(b) < 16 {
		return p, fmt.Errorf("%w: %d bytes from reflector", ErrReflector, len(b))
	}
	copy(p.Tag[:], b)
	if len(b) <= reflectorHeader || isServiceRun(b) {
		p.Service = true
		return p, nil
	}
	p.SenderRandom = binary.LittleEndian.Uint32(b[16:])
	n := binary.BigEndian.Uint32(b[20:])
	if uint64(n) > uint64(len(b)-reflectorHeader) {
		return p, fmt.Errorf("%w: length %d exceeds datagram of %d bytes", ErrReflector, n, len(b))
	}
	p.Data = b[reflectorHeader : reflectorHeader+int(n) : reflectorHeader+int(n)]
	return p, nil
}

// ToReflector is a datagram a client sent to a reflector, as the emulated
// reflector sees it.
type ToReflector struct {
	// Hello is set for hellos/pings; Tag is then the sender's own tag.
	Hello bool
	// Tag is the destination for data: peer_tag[0:12] || the receiving
	// endpoint's random.
	Tag Tag
	// SenderRandom is the sending endpoint's random (for a hello, the
	// random in its own tag).
	SenderRandom uint32
	// Data is the payload of a data datagram; it aliases the input.
	Data []byte
}

// ParseToReflector parses a client datagram for the emulated reflector:
// a hello (tag, then the 0xFF×12 run) or data in the AppendReflectorData
// layout, whose length must fit the datagram.
func ParseToReflector(b []byte) (ToReflector, error) {
	var p ToReflector
	if len(b) < reflectorHeader {
		return p, fmt.Errorf("%w: %d bytes to reflector", ErrReflector, len(b))
	}
	copy(p.Tag[:], b)
	if isServiceRun(b) {
		p.Hello = true
		p.SenderRandom = p.Tag.Random()
		return p, nil
	}
	p.SenderRandom = binary.LittleEndian.Uint32(b[16:])
	n := binary.BigEndian.Uint32(b[20:])
	if uint64(n) > uint64(len(b)-reflectorHeader) {
		return p, fmt.Errorf("%w: length %d exceeds datagram of %d bytes", ErrReflector, n, len(b))
	}
	p.Data = b[reflectorHeader : reflectorHeader+int(n) : reflectorHeader+int(n)]
	return p, nil
}

// AppendToClient appends the datagram the emulated reflector forwards to
// the endpoint with tag dest: dest || senderRandom (LE) || uint32 BE
// len(data) || data || padding, the layout ParseFromReflector reads.
func AppendToClient(dst []byte, dest Tag, senderRandom uint32, data []byte) []byte {
	start := len(dst)
	dst = append(dst, dest[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, senderRandom)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(data)))
	dst = append(dst, data...)
	return pad4(dst, start)
}

// AppendHelloReply appends the emulated reflector's answer to a hello. The
// real reflector's reply is not public; tgcalls only needs the tag's first
// 12 bytes to match and skips datagrams with the 0xFF×12 run, so the
// emulator echoes the hello layout addressed to the client.
func AppendHelloReply(dst []byte, dest Tag) []byte {
	return AppendHello(dst, dest)
}

const (
	hostnamePrefix = "reflector-"
	hostnameSuffix = ".reflector"
)

// ReflectorHostname is the synthetic candidate hostname tgcalls gives a
// reflector endpoint: "reflector-<serverID>-<random decimal>.reflector"
// (ReflectorPort.cpp, local candidate and SendTo).
func ReflectorHostname(serverID uint8, random uint32) string {
	return hostnamePrefix + strconv.FormatUint(uint64(serverID), 10) + "-" +
		strconv.FormatUint(uint64(random), 10) + hostnameSuffix
}

// ParseReflectorHostname reverses ReflectorHostname. Like tgcalls'
// SendTo it rejects a zero random; it also rejects server id 0 (tgcalls
// PrepareAddress refuses that port) and anything but plain decimals.
func ParseReflectorHostname(host string) (serverID uint8, random uint32, err error) {
	rest, ok := strings.CutPrefix(host, hostnamePrefix)
	if ok {
		rest, ok = strings.CutSuffix(rest, hostnameSuffix)
	}
	var idStr, randStr string
	if ok {
		idStr, randStr, ok = strings.Cut(rest, "-")
	}
	if !ok {
		return 0, 0, fmt.Errorf("%w: hostname %q", ErrReflector, host)
	}
	id, err1 := strconv.ParseUint(idStr, 10, 8)
	r, err2 := strconv.ParseUint(randStr, 10, 32)
	if err1 != nil || err2 != nil || id == 0 || r == 0 || !plainDecimal(idStr) || !plainDecimal(randStr) {
		return 0, 0, fmt.Errorf("%w: hostname %q", ErrReflector, host)
	}
	return uint8(id), uint32(r), nil
}

// plainDecimal rejects signs and leading zeros that ParseUint would accept,
// so a hostname maps to exactly one (serverID, random).
func plainDecimal(s string) bool {
	return s != "" && s[0] != '+' && (s == "0" || s[0] != '0')
}
