// Package b2bua binds a SIP call and a Telegram call into one trunk call.
//
// It sits between the two legs: sip (the PBX side) and telegram/tgcall
// (the Telegram side), and is the only package that imports both. This
// first part holds the pure logic the per-call state machine will use:
//
//   - mapping.go: the one table that turns a Telegram outcome into the SIP
//     final status and RFC 3326 Reason header the PBX sees, and a SIP
//     outcome from the PBX into the Telegram discard reason;
//   - route.go, number.go, peer.go: SIP → Telegram routing (Request-URI
//     user to a Telegram peer, number normalization);
//   - callerroute.go: Telegram → SIP routing (caller policy, target SIP
//     URI, display name and X-Telegram-* headers);
//   - pool.go: the account pool, one call per Telegram account, with
//     flood-wait back-off.
//
// Gaps: the per-call state machine, the wiring to the legs and the
// Telegram account package come later; nothing here does I/O.
package b2bua
