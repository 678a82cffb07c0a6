// Package sdp is the session-description side of the trunk's SIP leg: it
// parses the SDP a PBX sends, chooses the codec, DTMF, direction and
// SRTP-SDES keys for the call (RFC 3264 offer/answer), and writes the SDP the
// trunk sends back.
//
// The SIP user agent (package sip) owns one [Session] per dialog. For an
// INVITE with a body it calls [Session.Answer] and puts the returned SDP into
// the 200 OK; for a bodiless INVITE, an outbound call or a hold/resume
// re-INVITE it calls [Session.Offer] and later [Session.AcceptAnswer] with
// the peer's answer. Every successful exchange yields a [Negotiated]: what
// the media bridge needs to start (or re-point) RTP/SRTP for the call.
// A failed negotiation is a [*NegotiationError] carrying the SIP status and
// Warning text to answer with (RFC 3261 §20.43).
//
// Only the first usable audio stream is negotiated; every other m-line is
// rejected with port zero, as RFC 3264 §6 prescribes. Keys are produced from
// the session's random source and never appear in errors or String methods
// other than [Crypto.String], which renders the a=crypto line itself.
//
// Remote descriptions are read by a small line scanner of our own, more
// tolerant than pion/sdp's strict RFC 8866 grammar (bare LF, lines out of
// order, m=image for T.38, which pion refuses and we must answer with 488
// rather than 400). Our own descriptions are written with pion/sdp
// (imported as psdp), and the tests check that pion parses them back.
package sdp
