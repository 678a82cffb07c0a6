package media

import (
	"hash/crc32"
	"net/netip"
	"strconv"
)

// The local relay candidate of a reflector carries the foundation and
// priority tgcalls' ReflectorPort gives it, so that an official peer sees
// the candidate it would have gathered itself.
//
// ReflectorPort::HandleIncomingPacket (tgcalls v2/ReflectorPort.cpp) adds
// the candidate with libwebrtc's Port::AddAddress: type "relay", base
// address = the reflector's address, protocol "udp", relay protocol "udp",
// type preference ICE_TYPE_PREFERENCE_RELAY_UDP (2) and relay preference
// server_priority_ = RelayServerConfig.priority, which
// NativeNetworkingImpl leaves at 0.

// reflectorPriority is Candidate::GetPriority (libwebrtc
// api/candidate.cc): (type preference << 24) | (local preference << 8) |
// (256 - component), with local preference = (network preference << 8 |
// address precedence) + relay preference. The network preference is 127
// for the device's first (best) network (BasicNetworkManager assigns
// kHighestNetworkPreference downwards); the address precedence is 0 because
// the candidate's address is the unresolved reflector-… hostname
// (IPAddressPrecedence of an AF_UNSPEC address); component 1.
const (
	relayUDPTypePreference = 2   // ICE_TYPE_PREFERENCE_RELAY_UDP
	firstNetworkPreference = 127 // kHighestNetworkPreference
	hostnamePrecedence     = 0   // IPAddressPrecedence(AF_UNSPEC)
	reflectorRelayPref     = 0   // RelayServerConfig.priority
	reflectorPriority      = relayUDPTypePreference<<24 |
		(firstNetworkPreference<<8+hostnamePrecedence+reflectorRelayPref)<<8 |
		(256 - 1)
)

// reflectorFoundation is Port::ComputeFoundation (libwebrtc p2p/base/port.cc):
// the decimal CRC-32 (rtc::ComputeCrc32, the IEEE polynomial) of type, base
// IP, protocol and relay protocol. Later libwebrtc builds append the ICE
// tie-breaker, a random number per session, which makes the value
// unpredictable; the form without it is the one both sides can reproduce.
func reflectorFoundation(server netip.Addr) string {
	sum := crc32.ChecksumIEEE([]byte("relay" + server.Unmap().String() + "udp" + "udp"))
	return strconv.FormatUint(uint64(sum), 10)
}
