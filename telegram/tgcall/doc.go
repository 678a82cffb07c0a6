// Package tgcall is the Telegram 1:1 call engine of tgsip: one Client per
// Telegram account places and answers calls the way the official apps do
// (tgcalls "V2", library versions 8.0.0 and 9.0.0).
//
// Its place in the call flow: the b2bua asks a Client to Dial a Telegram user
// for a call coming from its other leg, or receives an incoming Call from
// OnIncoming and places it on the other leg. tgcall knows nothing of that leg:
// a call ends with an Error carrying a Cause and a DiscardReason, and the
// b2bua maps those. The Client runs the MTProto side of the
// call (phone.requestCall … confirmCall, receivedCall, discardCall) on gotd/td,
// verifies the DH exchange like tdlib and tdesktop do, exchanges the encrypted
// V2 signaling (telegram/wire), negotiates the audio content like tgcalls'
// ContentNegotiation, and brings up ICE + DTLS-SRTP with telegram/media. Once a
// Call is connected its Conn gives rtpbridge the lean RTP path.
//
// Every call runs on its own serial event loop: updates from gotd arrive on
// concurrent goroutines and out of order (research/tgcalls.md §1.7), so they are
// queued per call and applied one at a time, and signaling that arrives before
// the call's keys exist is buffered. No state is shared between calls.
package tgcall
