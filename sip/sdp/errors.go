package sdp

import (
	"strconv"
	"strings"
)

// Warning codes for the SIP Warning header (RFC 3261 §20.43) that a failed
// negotiation can carry.
const (
	WarnIncompatibleNetworkAddress = 301 // c= missing or not an IP literal
	WarnIncompatibleProtocol       = 302 // transport (RTP/AVP, RTP/SAVP, …) not available
	WarnMediaTypeNotAvailable      = 304 // no audio stream
	WarnIncompatibleFormat         = 305 // no common codec
	WarnAttributeNotUnderstood     = 306 // crypto lines we cannot use
	WarnMiscellaneous              = 399
)

// NegotiationError is an offer or answer the trunk cannot accept. The SIP
// layer answers the INVITE (or re-INVITE) with Status and a Warning header
// built from Code and Warning; for an unusable answer to our own offer it
// ends the dialog instead. The text never contains key material.
type NegotiationError struct {
	// Status is the SIP response status: 488 Not Acceptable Here for
	// media the trunk cannot do (RFC 3261 §21.4.26), 400 for a body that
	// is not SDP at all (§21.4.1).
	Status int
	// Code is the Warning header's warn-code (RFC 3261 §20.43).
	Code int
	// Warning is the warn-text, for the Warning header and logs.
	Warning string
}

// Error implements error.
func (e *NegotiationError) Error() string {
	return "sdp: " + strconv.Itoa(e.Status) + ": " + e.Warning
}

// WarningHeader renders the Warning header value per RFC 3261 §20.43,
// e.g. `305 tgsip "Incompatible media format: no common codec"`; agent is
// the host name or pseudonym of the trunk.
func (e *NegotiationError) WarningHeader(agent string) string {
	code := e.Code
	if code == 0 {
		code = WarnMiscellaneous
	}
	// quoted-string (RFC 3261 §25.1): escape backslash and quote only.
	text := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(printable(e.Warning))
	return strconv.Itoa(code) + " " + agent + " \"" + text + "\""
}

func notAcceptable(code int, text string) *NegotiationError {
	return &NegotiationError{Status: 488, Code: code, Warning: text}
}
