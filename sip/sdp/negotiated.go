package sdp

import (
	"log/slog"
	"net/netip"

	"github.com/pion/srtp/v3"
)

// Negotiated is the outcome of one offer/answer exchange: what the media
// bridge needs to send and receive the call's audio on the SIP leg.
type Negotiated struct {
	// Codec is the one audio codec of the call, with the payload type
	// used on the wire (the offerer's number, RFC 3264 §6.1) and the
	// peer's fmtp (its receive preferences).
	Codec Codec
	// DTMF is the telephone-event format (RFC 4733), nil when DTMF
	// events are not negotiated. Its ClockRate normally equals Codec's.
	DTMF *Codec
	// Remote is where to send RTP. Its port is never 0 in a successful
	// negotiation; its address is unspecified when the peer put us on
	// hold RFC 2543-style (then Direction does not send).
	Remote netip.AddrPort
	// RemoteRTCP is where to send RTCP: Remote when RTCPMux, else the
	// peer's a=rtcp or RTP port + 1.
	RemoteRTCP netip.AddrPort
	// RTCPMux: RTP and RTCP share one port (RFC 5761), both ways.
	RTCPMux bool
	// Direction is our direction: whether we send and/or receive
	// (hold is SendOnly or Inactive on one side or the other).
	Direction Direction
	// PTime is the packetization to send with, in ms: the peer's a=ptime
	// when it gave one (capped by its a=maxptime), else ours.
	PTime int
	// SRTP holds the SDES keys, nil for plain RTP.
	SRTP *SRTPKeys
}

// SRTPKeys are the SDES master keys of an SRTP stream. Local keys protect
// what we send, remote keys what we receive (RFC 4568 §6.1: each side
// announces the key it sends with). Printing or logging an SRTPKeys shows
// only the profile.
type SRTPKeys struct {
	// Profile is the negotiated crypto-suite in pion/srtp terms.
	Profile srtp.ProtectionProfile
	// LocalKey and LocalSalt key our outgoing SRTP/SRTCP.
	LocalKey, LocalSalt []byte
	// RemoteKey and RemoteSalt key the peer's SRTP/SRTCP.
	RemoteKey, RemoteSalt []byte
	// LocalMKI is our master key identifier (the trunk sends none: nil).
	LocalMKI []byte
	// RemoteMKI is the MKI the peer puts in its packets, nil for none;
	// pass it to srtp.MasterKeyIndicator for the remote context.
	RemoteMKI []byte
}

// String shows the profile only: keys stay out of logs and errors.
func (k SRTPKeys) String() string { return "SRTPKeys{" + k.Profile.String() + "}" }

// LogValue shows the profile only.
func (k SRTPKeys) LogValue() slog.Value { return slog.StringValue(k.Profile.String()) }
