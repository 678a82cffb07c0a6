// Package media is the media transport of one Telegram 1:1 call: ICE, the
// reflector relay, DTLS-SRTP and RTCP, with the semantics of tgcalls V2
// (InstanceV2Impl / NativeNetworkingImpl).
//
// It sits between the call engine (telegram/tgcall), which exchanges the
// signaling (InitialSetup, Candidates) and drives a Session through
// LocalParameters, OnCandidate, SetRemote and AddRemoteCandidate, and the media
// bridge (rtpbridge), which moves plain RTP through ReadRTP and WriteRTP once
// Connected is closed.
//
// The transport is built directly on a pion/ice Agent, pion/dtls and
// pion/srtp. There is no PeerConnection, no track and no interceptor on the
// packet path: once a pair is selected, ReadRTP reads the selected socket
// itself (direct.go), demultiplexes by the first byte (RFC 7983), decrypts
// into the caller's buffer and returns, and hands STUN to pion's reader;
// one packet written is extended (abs-send-time, transport-wide-cc),
// encrypted into a buffer owned by the Session and sent to the selected
// remote. A passthrough bridge may instead take the packets by PushRTP
// (push.go): on the shared port its batch reader decrypts and hands each
// packet to the bridge inline, with no goroutine in between. Receiver/sender
// reports and transport-cc feedback of all calls of
// a Transport come from one shared timer (scheduler.go).
//
// Telegram reflectors (tgcalls v2/ReflectorPort.cpp) are implemented as local
// relay candidates: each reflector gets a UDP socket that says hello until the
// reflector answers, then joins the ICE agent as a virtual candidate whose
// net.PacketConn wraps and unwraps the reflector's tagged datagrams. Remote
// candidates named reflector-<id>-<tag>.reflector are mapped onto the
// reflector with the same id.
package media
