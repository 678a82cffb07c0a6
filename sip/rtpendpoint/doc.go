// Package rtpendpoint is the RTP endpoint of one SIP call: the media half of
// the SIP leg, with the same ReadRTP/WriteRTP shape as telegram/tgcall.Conn,
// so the media bridge (rtpbridge) reads and writes plain RTP on both legs and
// knows nothing of SDES, SRTP, RTCP or NAT.
//
// Place in the call flow: package sip negotiates the call's SDP with
// sip/sdp and owns the call's RTP/RTCP sockets (sip.RTPPort). It builds one
// Endpoint per call from those sockets and the first sdp.Negotiated, calls
// Update after every later offer/answer exchange (re-INVITE, UPDATE, hold and
// resume, early media then the 2xx) and Close when the call ends, before it
// frees the sockets; the b2bua gets the endpoint from the call's Media and
// hands it to the bridge. The endpoint imports sip/sdp only, not sip.
//
// The packet path is run-to-completion in the caller's goroutine, with no
// goroutine or channel hop and no allocation per packet: ReadRTP is one
// socket read, a source check, one SRTP unprotect into the caller's buffer
// (pion/srtp's DecryptRTP into dst) and a statistics update under a short
// mutex; WriteRTP is one SRTP protect into a buffer owned by the endpoint and
// one socket write. RTCP muxed on the RTP port (RFC 5761) is recognised by its
// packet type in the second byte and handled inline by ReadRTP, so ReadRTP
// must be called continuously (as tgcall.Conn's). Without rtcp-mux the RTCP
// socket is read by one goroutine per endpoint: RTCP arrives a few times per
// ten seconds, and reading it where it arrives keeps the arrival times that
// the round-trip time is computed from exact.
//
// For a passthrough the bridge can take packets by push instead
// (PushRTP, rtpbridge's Pusher): the endpoint's receive path then runs on
// a reading goroutine of its own or, with Options.Poller, on one goroutine
// shared by all pushing endpoints (Linux: an epoll set of their sockets
// waited on through Go's netpoller, one recvmmsg per ready socket), and
// calls the bridge's deliver, which rewrites and sends on the other leg in
// the same call: no goroutine between the legs, and with a Poller no
// goroutine and no netpoller wake-up per call.
//
// # Keys
//
// SRTP and SRTCP use pion/srtp/v3 contexts for the six SDES suites sip/sdp
// negotiates (AES_CM_128_HMAC_SHA1_80/32, AES_256_CM_HMAC_SHA1_80/32,
// AEAD_AES_128_GCM, AEAD_AES_256_GCM), with the MKI each side announced.
// Update with new remote keys keeps the old receive context until the first
// packet authenticates under the new one (the peer sends under its old keys
// until the offer/answer exchange has completed on its side: RFC 4568 §7.1.4,
// and RFC 3264 §8.3.1 for addresses), so a rekey loses no packet; unchanged keys keep their context, and with it the
// rollover counter. New local keys take effect with the next packet sent.
// Packets the peer protects with keys we have not been given yet (its
// answer to our own re-offer still in flight) cannot be authenticated and
// are dropped and counted.
//
// # Addresses
//
// Packets are accepted from the negotiated remote address only; others are
// dropped and counted. With Options.Latch (symmetric RTP, the "comedia"
// behaviour phones behind NAT need), the endpoint instead accepts the first
// authenticated packet from any address and from then on sends to, and
// accepts from, that address only; a new remote address in Update latches
// again. For plain RTP "authenticated" can only mean a well-formed packet
// with a negotiated payload type, so latching plain RTP trusts the first
// sender: keep SRTP on for trunks that need latching. After an Update that
// moves the peer, packets from the old address are still accepted until the
// first one from the new address.
//
// # RTCP and the shared scheduler
//
// Sender or receiver reports (RFC 3550 §6.4) with an SDES CNAME go out every
// Options.RTCPInterval, randomised to 0.5–1.5 times it (§6.3.1), also while
// on hold (RFC 3264 §5.1: RTCP continues for every direction). Incoming SR and
// RR give the statistics of both directions: packets, bytes, cumulative and
// fractional loss (§6.4.1, A.3), interarrival jitter (A.8) and the round-trip
// time from LSR/DLSR (§6.4.1).
//
// Reports are driven by a Scheduler: one goroutine with one timer that sleeps
// until the earliest report due among all its endpoints and then sends every
// report due within its resolution, so N endpoints cost one wake-up per
// report batch instead of N tickers (research/perf.md measured per-session
// tickers at 19 % of the Telegram media path's CPU). Pass one Scheduler in
// Options to share it between all calls; without one each endpoint starts a
// private Scheduler (one goroutine, one wake-up per report).
package rtpendpoint
