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
// b2bua drives the call with Ringing, Progress, Answer, Reject and Hangup.
// Calls to the PBX are placed with Dial and watched through Progress,
// Answered and Done. Both kinds serve re-INVITE, UPDATE, INFO (DTMF) and
// BYE, run RFC 4028 session timers, and expose their RTP endpoint as
// Media, renegotiated on hold/resume (OnMedia reports changes, OnOffer lets
// the b2bua answer new offers itself, Reoffer sends ours).
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
