package emu

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// connectionMaxLayer is the call protocol layer every current tgcalls
// implementation reports (tgcalls Instance.cpp GetConnectionMaxLayer).
const connectionMaxLayer = 92

// CallState is the switch's view of a call.
type CallState int

// Call states, in the order a successful call passes them.
const (
	// CallWaiting: phone.requestCall done, no device of the callee has
	// acknowledged it yet.
	CallWaiting CallState = iota
	// CallRinging: the callee called phone.receivedCall.
	CallRinging
	// CallAccepted: the callee called phone.acceptCall (g_b sent to the
	// caller), confirmation pending.
	CallAccepted
	// CallActive: the caller called phone.confirmCall; both have the key.
	CallActive
	// CallDiscarded: the call is over.
	CallDiscarded
)

func (s CallState) String() string {
	switch s {
	case CallWaiting:
		return "waiting"
	case CallRinging:
		return "ringing"
	case CallAccepted:
		return "accepted"
	case CallActive:
		return "active"
	case CallDiscarded:
		return "discarded"
	}
	return "CallState(" + strconv.Itoa(int(s)) + ")"
}

// CallInfo is a snapshot of one call for test assertions.
type CallInfo struct {
	ID, AccessHash int64
	// AdminID is the caller, ParticipantID the callee.
	AdminID, ParticipantID int64
	State                  CallState
	Video                  bool
	// Reason is the discard reason (nil until discarded, or when the
	// discarding party gave none).
	Reason tg.PhoneCallDiscardReasonClass
	// DiscardedBy is the user who discarded the call; 0 means the switch
	// did (a timeout).
	DiscardedBy int64
	// Duration is the duration in seconds the discarding party reported.
	Duration int
	// P2PAllowed is phoneCall.p2p_allowed.
	P2PAllowed bool
	// LibraryVersions is the intersection computed at acceptCall; Version
	// the one chosen at confirmCall.
	LibraryVersions []string
	Version         string
	KeyFingerprint  int64
	// Connections are the reflector endpoints given to both parties.
	Connections []tg.PhoneConnection
	// Date is the requestCall time; ReceiveDate, AcceptDate, StartDate
	// (confirmCall) and EndDate are zero until they happen.
	Date, ReceiveDate, AcceptDate, StartDate, EndDate time.Time
}

// call is the switch's record of a call. Guarded by Network.mu.
type call struct {
	info     CallInfo
	adminDev *device // the caller's device that requested it
	partDev  *device // the callee's device that accepted it
	gaHash   []byte
	ga, gb   []byte
	protoA   tg.PhoneCallProtocol // the caller's offer
	merged   tg.PhoneCallProtocol // intersection at acceptCall
	params   string               // custom_parameters, when overridden
	webrtc   []tg.PhoneConnectionWebrtc
	timer    *timer
	ended    bool // counted in Network.ended
}

func (c *call) snapshot() CallInfo {
	i := c.info
	i.LibraryVersions = slices.Clone(i.LibraryVersions)
	i.Connections = slices.Clone(i.Connections)
	return i
}

// Call returns a snapshot of the call with the given id.
func (n *Network) Call(id int64) (CallInfo, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.calls[id]
	if c == nil {
		return CallInfo{}, false
	}
	return c.snapshot(), true
}

// Calls returns snapshots of all calls in the order they were requested.
func (n *Network) Calls() []CallInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]CallInfo, 0, len(n.callOrder))
	for _, id := range n.callOrder {
		out = append(out, n.calls[id].snapshot())
	}
	return out
}

func unix(t time.Time) int {
	if t.IsZero() {
		return 0
	}
	return int(t.Unix())
}

func (c *call) waiting(p tg.PhoneCallProtocol) *tg.PhoneCallWaiting {
	w := &tg.PhoneCallWaiting{
		Video:         c.info.Video,
		ID:            c.info.ID,
		AccessHash:    c.info.AccessHash,
		Date:          unix(c.info.Date),
		AdminID:       c.info.AdminID,
		ParticipantID: c.info.ParticipantID,
		Protocol:      p,
		ReceiveDate:   unix(c.info.ReceiveDate),
	}
	w.SetFlags()
	return w
}

func (c *call) requested() *tg.PhoneCallRequested {
	r := &tg.PhoneCallRequested{
		Video:         c.info.Video,
		ID:            c.info.ID,
		AccessHash:    c.info.AccessHash,
		Date:          unix(c.info.Date),
		AdminID:       c.info.AdminID,
		ParticipantID: c.info.ParticipantID,
		GAHash:        c.gaHash,
		Protocol:      c.protoA,
	}
	r.SetFlags()
	return r
}

func (c *call) accepted() *tg.PhoneCallAccepted {
	a := &tg.PhoneCallAccepted{
		Video:         c.info.Video,
		ID:            c.info.ID,
		AccessHash:    c.info.AccessHash,
		Date:          unix(c.info.Date),
		AdminID:       c.info.AdminID,
		ParticipantID: c.info.ParticipantID,
		GB:            c.gb,
		Protocol:      c.merged,
	}
	a.SetFlags()
	return a
}

func (c *call) active(gaOrB []byte) *tg.PhoneCall {
	p := c.merged
	p.LibraryVersions = []string{c.info.Version}
	conns := make([]tg.PhoneConnectionClass, 0, len(c.info.Connections))
	for _, pc := range c.info.Connections {
		pc := pc
		pc.PeerTag = slices.Clone(pc.PeerTag)
		conns = append(conns, &pc)
	}
	for _, w := range c.webrtc {
		w := w
		conns = append(conns, &w)
	}
	a := &tg.PhoneCall{
		P2PAllowed:     c.info.P2PAllowed,
		Video:          c.info.Video,
		ID:             c.info.ID,
		AccessHash:     c.info.AccessHash,
		Date:           unix(c.info.Date),
		AdminID:        c.info.AdminID,
		ParticipantID:  c.info.ParticipantID,
		GAOrB:          gaOrB,
		KeyFingerprint: c.info.KeyFingerprint,
		Protocol:       p,
		Connections:    conns,
		StartDate:      unix(c.info.StartDate),
	}
	if c.params != "" {
		a.SetCustomParameters(tg.DataJSON{Data: c.params})
	}
	a.SetFlags()
	return a
}

func (c *call) discarded() *tg.PhoneCallDiscarded {
	d := &tg.PhoneCallDiscarded{
		Video:    c.info.Video,
		ID:       c.info.ID,
		Reason:   c.info.Reason,
		Duration: c.info.Duration,
	}
	d.SetFlags()
	return d
}

// pushCallLocked sends updatePhoneCall{pc} to device d.
func (n *Network) pushCallLocked(d *device, c *call, pc tg.PhoneCallClass) {
	n.pushLocked(d, &tg.UpdatePhoneCall{PhoneCall: pc}, c.info.AdminID, c.info.ParticipantID)
}

func validateProtocol(p tg.PhoneCallProtocol) error {
	if !p.UDPP2P && !p.UDPReflector {
		return tgerr.New(400, "CALL_PROTOCOL_FLAGS_INVALID")
	}
	if p.MinLayer > p.MaxLayer || p.MinLayer > connectionMaxLayer || p.MaxLayer < connectionMaxLayer {
		return tgerr.New(400, "CALL_PROTOCOL_LAYER_INVALID")
	}
	return nil
}

// versionLess compares library versions numerically ("10.0.0" > "9.0.0").
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i]) // a non-number part counts as 0
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return a < b
}

// callForLocked finds the call an InputPhoneCall names, for one of its
// parties.
func (n *Network) callForLocked(self *account, in tg.InputPhoneCall) (*call, error) {
	c := n.calls[in.ID]
	if c == nil || c.info.AccessHash != in.AccessHash ||
		(self.ID != c.info.AdminID && self.ID != c.info.ParticipantID) {
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	}
	return c, nil
}

// armLocked (re)starts the call's timer: when it fires while the call is
// still in state want, the switch discards the call with reason.
func (n *Network) armLocked(c *call, d time.Duration, want CallState, reason tg.PhoneCallDiscardReasonClass) {
	n.stopLocked(c.timer)
	c.timer = n.afterLocked(d, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.closed || c.info.State != want {
			return
		}
		n.log.Info("call timed out", "call", c.info.ID, "state", want.String())
		n.discardLocked(c, nil, nil, reason, 0)
	})
}

func (n *Network) stopTimerLocked(c *call) {
	n.stopLocked(c.timer)
	c.timer = nil
}

// discardLocked ends call c and tells every device of both parties that
// still cares, except the discarding device by.
func (n *Network) discardLocked(c *call, who *account, by *device, reason tg.PhoneCallDiscardReasonClass, duration int) {
	n.stopTimerLocked(c)
	c.info.State = CallDiscarded
	c.info.Reason = reason
	c.info.Duration = duration
	c.info.EndDate = time.Now()
	if who != nil {
		c.info.DiscardedBy = who.ID
	}
	n.forgetOldLocked(c)
	targets := []*device{c.adminDev}
	if c.partDev != nil {
		targets = append(targets, c.partDev)
	} else {
		targets = append(targets, n.devicesOfLocked(c.info.ParticipantID)...)
	}
	for _, d := range targets {
		if d != by && (d.userID == c.info.AdminID || d.userID == c.info.ParticipantID) {
			n.pushCallLocked(d, c, c.discarded())
		}
	}
}

// forgetOldLocked counts c as ended and forgets the oldest ended calls
// beyond KeepEndedCalls. A later request about a forgotten call gets what
// an unknown call id gets.
func (n *Network) forgetOldLocked(c *call) {
	keep := n.opts.KeepEndedCalls
	if c.ended || keep < 0 {
		return
	}
	c.ended = true
	n.ended = append(n.ended, c.info.ID)
	if len(n.ended) <= keep {
		return
	}
	old := n.ended[:len(n.ended)-keep]
	for _, id := range old {
		delete(n.calls, id)
	}
	n.ended = append(n.ended[:0], n.ended[len(old):]...)
	n.callOrder = slices.DeleteFunc(n.callOrder, func(id int64) bool { return n.calls[id] == nil })
}

// peerTag draws the 16-byte tag both parties use with the reflectors.
func (n *Network) peerTag() ([]byte, error) {
	t := make([]byte, 16)
	if _, err := io.ReadFull(n.opts.Random, t); err != nil {
		return nil, err
	}
	return t, nil
}
