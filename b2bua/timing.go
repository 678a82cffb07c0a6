package b2bua

import "time"

// Step is a moment of a SIP → Telegram call that a caller hears the
// effect of, or that starts such an effect: the trunk reports each one to
// its Observer, so a load run can time what the trunk itself adds between
// what it is told and what it sends (issue 13: INVITE → phone.requestCall,
// Telegram ringing → 180, Telegram connected → 200, BYE → discardCall).
type Step int

// The steps, in the order a call answered on Telegram and hung up by the
// PBX passes them.
const (
	// StepInvite: the SIP server handed the trunk an INVITE. Its time is
	// taken when the trunk gets the call; it is reported once the call's
	// account is leased, with that account's name.
	StepInvite Step = iota
	// StepDial: the trunk asks the account's call engine to place the
	// Telegram call (messages.getDhConfig, then phone.requestCall).
	StepDial
	// StepRinging: the call's loop learnt that Telegram rings the callee.
	StepRinging
	// Step180: the 180 Ringing went out (or failed to).
	Step180
	// StepConnected: the call's loop learnt that the Telegram media is
	// connected.
	StepConnected
	// Step200: the 200 OK went out.
	Step200
	// StepSIPEnded: the call's loop learnt that the SIP leg ended (the
	// PBX's BYE or CANCEL).
	StepSIPEnded
	// StepDiscard: the trunk asked the Telegram call to hang up for the
	// SIP leg's end (the engine sends phone.discardCall).
	StepDiscard
)

var stepNames = [...]string{"invite", "dial", "ringing", "180", "connected", "200", "sip-ended", "discard"}

func (s Step) String() string {
	if s >= 0 && int(s) < len(stepNames) {
		return stepNames[s]
	}
	return "Step(?)"
}

// StepEvent is one Step of one call.
type StepEvent struct {
	Step Step
	// At is when it happened (time.Now, with its monotonic reading).
	At time.Time
	// SIPCallID is the SIP leg's Call-ID: it ties a call's events
	// together.
	SIPCallID string
	// Account is the leased Telegram account's name; only StepInvite
	// carries it.
	Account string
}

// Observer is told each Step of each SIP → Telegram call
// (TrunkOptions.Observer). It is called on the call's own goroutine, in
// the call's step order: it must be quick and must not block (record the
// event and return).
type Observer interface {
	CallStep(StepEvent)
}

// step reports a step that happened at at; nothing when no Observer is
// set.
func (t *Trunk) step(s Step, callID, account string, at time.Time) {
	if t.opts.Observer != nil {
		t.opts.Observer.CallStep(StepEvent{Step: s, At: at, SIPCallID: callID, Account: account})
	}
}

// stepNow reports a step happening now; it reads the clock only when an
// Observer is set.
func (t *Trunk) stepNow(s Step, callID string) {
	if t.opts.Observer != nil {
		t.opts.Observer.CallStep(StepEvent{Step: s, At: time.Now(), SIPCallID: callID})
	}
}
