// Package demo is the cast of `tgsip demo`: emulated Telegram users a SIP
// caller can ring through the trunk, each a real MTProto client of the
// emulated network (telegram/emu) with its own call engine
// (telegram/tgcall), running in this process.
//
// Directory lists them: echo sends back what it hears, tone plays 1 kHz,
// busy declines, noanswer lets the call ring until Telegram's ring timeout,
// private refuses calls by its privacy settings (the emulator enforces
// them, so it needs no client) and relayonly echoes like echo but allows
// peer-to-peer with nobody, so its media crosses the emulator's reflector.
// Start adds them to a Network, logs them in and answers their calls;
// Users.Call makes one of them call a Telegram user (the trunk's account
// for `tgsip demo --inbound-to`), playing a tone and keeping what it hears.
//
// In the call flow the demo users are the far end of the Telegram leg: the
// trunk's account calls them (SIP → Telegram) or they call it
// (Telegram → SIP). Nothing here is used by `tgsip serve`.
//
// Gaps: the demo users send 20 ms Opus frames without RTP header extensions
// of their own (the engine adds the negotiated ones) and never mute, hold or
// re-key; each answers as many calls at once as Options.MaxCalls allows.
package demo
