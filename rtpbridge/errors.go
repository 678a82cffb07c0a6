package rtpbridge

import (
	"errors"
	"fmt"
	"time"
)

// LegID names one of the two legs a Bridge joins.
type LegID int

// The two legs.
const (
	LegSIP LegID = iota
	LegTelegram
)

func (l LegID) String() string {
	switch l {
	case LegSIP:
		return "sip"
	case LegTelegram:
		return "telegram"
	}
	return fmt.Sprintf("leg(%d)", int(l))
}

// ErrMediaTimeout matches (errors.Is) every *MediaTimeoutError.
var ErrMediaTimeout = errors.New("rtpbridge: media timeout")

// MediaTimeoutError ends a bridge whose leg sent no RTP for the configured
// MediaTimeout. The b2bua maps it to its hang-up causes (a BYE with
// Reason Q.850 cause 3xx toward SIP, a disconnect toward Telegram).
type MediaTimeoutError struct {
	Leg  LegID
	Idle time.Duration
}

func (e *MediaTimeoutError) Error() string {
	return fmt.Sprintf("rtpbridge: no rtp from the %s leg for %v", e.Leg, e.Idle.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrMediaTimeout) true.
func (e *MediaTimeoutError) Is(target error) bool { return target == ErrMediaTimeout }

// EndpointError ends a bridge whose leg's Endpoint failed (its ReadRTP
// returned an error: the leg ended or its socket closed).
type EndpointError struct {
	Leg LegID
	Err error
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("rtpbridge: %s leg: %v", e.Leg, e.Err)
}

func (e *EndpointError) Unwrap() error { return e.Err }
