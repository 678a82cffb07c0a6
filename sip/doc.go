// Package sip is the SIP leg of the trunk, built on emiago/sipgo's
// transport and transaction layers with a dialog layer of its own.
//
// A Server listens on UDP, TCP and TLS, decides which peers may call in
// (per-trunk IP allowlists and RFC 8760 digest authentication with
// HMAC-signed nonces whose nonce counts must grow, so a replayed request
// gets a fresh challenge, and a failed-attempt limit per source),
// keeps a registry of live dialogs, and owns a pool of RTP port pairs.
// The SDES policy (off, optional, required) is global in Config.Media and
// may be overridden per trunk for calls in and for calls out to the PBX.
//
// Calls from the PBX arrive as an InboundCall handed to the function set
// with OnCall: 100 Trying has been sent, the SDP offer has been answered
// (or refused with 488 and a Warning before the b2bua sees it), and the
// b2bua drives the call with Ringing, Progress, Answer, Reject and Hangup
// and watches Confirmed (the ACK came), MediaChanged and Done. Calls to
// the PBX are placed with Dial and watched through Progress, Answered,
// MediaChanged and Done. Done is closed at the call's end and Err then
// returns the *CallError, as tgcall.Call's Done and Err do.
//
// Each call, either direction, is one event loop (loop.go): a goroutine
// that owns the call's state (the INVITE and its state, ACKs, timers,
// CSeqs, route set, SDP session) and runs, one at a time, the events that
// sipgo's handlers, timers and the b2bua's calls post to its mailbox.
// Sends that wait for a peer run off the loop and post their outcome back;
// nothing of a call's state is under a lock. Both directions share the
// dialog (dialog.go, made by newUASDialog or newUACDialog), in-dialog
// requests either way, the retransmitter of our 2xx and reliable 18x, and
// one finish (leg.go).
//
// Both serve re-INVITE, UPDATE, INFO (DTMF) and BYE, run RFC 4028 session
// timers, and expose their media as Media: the call's sip/rtpendpoint
// Endpoint (plain RTP in and out through ReadRTP and WriteRTP, SRTP, RTCP
// and symmetric RTP inside) and the negotiated codec, ptime, DTMF and
// direction. The engine in media.go makes the endpoint at the first
// completed offer/answer, updates it at every later one (re-INVITE,
// UPDATE, hold/resume, early media then the 2xx) and the call's end closes
// it before the port pair is released; one rtpendpoint.Scheduler owned by
// the Server sends every call's RTCP reports. MediaChanged reports
// changes, Reoffer sends our offers. Raw SDP is an escape hatch only: SDP
// passed to InboundCall.Answer or Progress (the b2bua passes nil) is sent
// as it is and bypasses the engine, and LocalSDP and Offer show the SDP
// for logs and tests.
//
// The gaps of sipgo this package closes itself: 2xx retransmission until
// the ACK and BYE on ACK timeout (RFC 3261 §13.3.1.4), ACK for every copy
// of a 2xx to our INVITE (§13.2.2.4), ACK+BYE for a 2xx that crosses our
// CANCEL (§9.1), reliable provisional responses and PRACK (RFC 3262), and
// in-dialog requests sent to the address the dialog came from, which
// reuses the caller's TCP/TLS connection, and, without a listener of a
// stream transport, requests that reuse our own connection with an
// RFC 5923 alias so the PBX can reach us over it (contact.go).
//
// Every call ends with a *CallError carrying the SIP status, a Cause and
// the RFC 3326 Reason, so the b2bua maps it to Telegram in one place.
//
// Not here yet: Prometheus counters (TrustStats holds the trust counters
// until then), REFER, DTLS-SRTP on the SIP leg.
package sip
