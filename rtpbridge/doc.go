// Package rtpbridge relays the audio of one call between its SIP leg and
// its Telegram leg. It is the hot path of the trunk.
//
// The b2bua adapts both legs to Endpoint (plain RTP in and out; SRTP,
// ICE, DTLS and RTCP stay inside the legs) and describes each leg's
// negotiated audio with a Format; rtpbridge imports neither leg.
//
// Bridge.Run starts one goroutine per direction. Each reads its source
// Endpoint and writes the other leg's Endpoint directly, run to completion
// per packet: no channel, no goroutine hop, no per-packet timer, no
// allocation. On a passthrough, a source Endpoint that is a Pusher hands
// its packets to the bridge on its own receiving goroutine instead
// (PushRTP): read, decrypt, rewrite, encrypt and write happen there with
// no goroutine between the legs, and the direction's goroutine only waits
// in ReadRTP for the source's end. (A direction that decodes every packet
// for DTMF detection keeps reading: decoding on a receiving goroutine
// shared by many calls would hold them up.) A supervisor (Run's own goroutine, waking at most once a
// second in steady state) checks the media timeout and sends silence
// toward a leg that needs a steady stream while the other is silent.
//
// When both legs speak Opus the bridge is a passthrough: payloads go on
// untouched; SSRC, sequence number and timestamp are rewritten into one
// continuous stream per destination (across source SSRC changes,
// restarts and wraparound); payload types are mapped; header extensions
// are dropped unless the destination Format maps their ids (RFC 8285 ids
// are per session: Telegram's abs-send-time and transport-cc ids mean
// nothing to a PBX). A passthrough has no jitter buffer: both ends run
// their own.
//
// Otherwise the bridge transcodes with the legs' Decoders, Encoders and
// Resamplers (package rtpbridge/codec has libopus, G.711 and G.722):
// source packets pass a jitter buffer (reorder, conceal with FEC or PLC,
// adaptive and bounded wait), are decoded, resampled and re-framed at the
// destination's ptime (20 ms Opus toward Telegram; the SIP ptime toward
// SIP, whatever frame size Telegram sent).
//
// DTMF: RFC 4733 events from SIP are reported to Config.OnDTMF, relayed
// where the other side negotiated telephone-event, and optionally rendered
// as tones toward Telegram; optionally, tones in Telegram's audio are
// detected (Goertzel) and sent to SIP as RFC 4733 events.
//
// Hold: nothing is sent toward a held leg (SetHeld); holding the Telegram
// leg is reported to Config.OnTelegramMuted. Stats gives per-direction
// counters and an E-model MOS estimate. A leg silent for
// Config.MediaTimeout ends Run with a *MediaTimeoutError.
//
// In-band DTMF needs audio: a passthrough bridge renders and detects it
// only when the Telegram Leg has an Encoder (rendering) or a Decoder
// (detection); it then decodes Telegram's Opus on the side and replaces
// audio packets one for one by RFC 4733 packets while a digit sounds.
//
// Gap: the jitter buffer is driven by arrivals (a gap is concealed when a
// later packet finds the wait over), not by a playout clock.
package rtpbridge
