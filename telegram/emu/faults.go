package emu

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
)

// SignalingFaults disturb phone.sendSignalingData forwarding. Probabilities
// are in [0, 1]; decisions come from a PRNG seeded with Seed, so the same
// sequence of packets meets the same fate in every run.
type SignalingFaults struct {
	// Loss drops a packet.
	Loss float64
	// Duplicate delivers a packet twice.
	Duplicate float64
	// Reorder holds a packet back until the next one to the same device has
	// been delivered (or until Delay, at least 20 ms, has passed).
	Reorder float64
	// Delay postpones every delivered packet by this much.
	Delay time.Duration
	// Seed seeds the PRNG.
	Seed int64
}

// Faults injects failures into a Network. Methods are safe for concurrent
// use.
type Faults struct {
	n *Network

	mu       sync.Mutex
	sig      SignalingFaults
	rng      *rand.Rand
	failNext map[string][]*tgerr.Error
	vanished map[int64]bool
	protocol CallProtocol
	relays   RelayFaults
}

// RelayFaults take relays out of the connections of calls confirmed from
// now on (relays that fail), so that only the remaining paths are left.
type RelayFaults struct {
	// NoReflectors leaves out the phoneConnection reflector entries.
	NoReflectors bool
	// NoTURN leaves out the TURN server's phoneConnectionWebrtc entry.
	NoTURN bool
}

// CallProtocol overrides what the switch selects at phone.confirmCall, to
// test how clients refuse what they cannot honour.
type CallProtocol struct {
	// Version replaces the selected library version when not empty.
	Version string
	// CustomParameters is sent as phoneCall.custom_parameters (JSON) when
	// not empty.
	CustomParameters string
}

// SetCallProtocol overrides the protocol of calls confirmed from now on;
// the zero value turns the override off.
func (f *Faults) SetCallProtocol(p CallProtocol) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.protocol = p
}

// SetRelays sets the relay faults; the zero value turns them off.
func (f *Faults) SetRelays(r RelayFaults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.relays = r
}

func (f *Faults) confirmOverrides() (CallProtocol, RelayFaults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.protocol, f.relays
}

func newFaults(n *Network) *Faults {
	return &Faults{n: n, failNext: map[string][]*tgerr.Error{}}
}

// Faults returns the Network's fault injector.
func (n *Network) Faults() *Faults { return n.faults }

// SetSignaling replaces the signaling faults and reseeds their PRNG. The
// zero value turns them off.
func (f *Faults) SetSignaling(s SignalingFaults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sig = s
	f.rng = rand.New(rand.NewPCG(uint64(s.Seed), uint64(s.Seed)^0x9e3779b97f4a7c15))
}

// FailNext makes the next call of method (a TL name such as
// "phone.requestCall") fail with err instead of running. Calls queue: two
// FailNext calls fail the next two requests.
func (f *Faults) FailNext(method string, err *tgerr.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = append(f.failNext[method], err)
}

// PendingFails is how many FailNext failures of method are still queued.
func (f *Faults) PendingFails(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.failNext[method])
}

func (f *Faults) takeFail(method string) *tgerr.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.failNext[method]
	if len(q) == 0 {
		return nil
	}
	f.failNext[method] = q[1:]
	return q[0]
}

// Vanish makes a user disappear as a phone that lost its network: its
// connections are dropped, its requests get no answer, nothing is pushed to
// it and the reflectors lose the media of its calls, until Restore. Calls it
// is in are not discarded by the server.
func (f *Faults) Vanish(userID int64) {
	n := f.n
	n.mu.Lock()
	f.mu.Lock()
	if f.vanished == nil {
		f.vanished = map[int64]bool{}
	}
	f.vanished[userID] = true
	f.mu.Unlock()
	var sessions []tgtest.Session
	for _, d := range n.devicesOfLocked(userID) {
		sessions = append(sessions, d.sessions...)
		d.sessions = nil
	}
	n.mu.Unlock()
	for _, s := range sessions {
		n.srv.ForceDisconnect(s)
	}
}

// Restore undoes Vanish.
func (f *Faults) Restore(userID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vanished, userID)
}

// anyVanished reports whether some user is vanished (Vanish, or added
// with Vanished).
func (f *Faults) anyVanished() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.vanished) > 0
}

func (f *Faults) vanishedLocked(userID int64) bool {
	if userID == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vanished[userID]
}

// signalFate is what happens to one signaling packet.
type signalFate struct {
	copies  int
	reorder bool
	delay   time.Duration
}

func (f *Faults) decide() signalFate {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sig
	fate := signalFate{copies: 1, delay: s.Delay}
	if f.rng == nil {
		return fate
	}
	if s.Loss > 0 && f.rng.Float64() < s.Loss {
		fate.copies = 0
		return fate
	}
	if s.Duplicate > 0 && f.rng.Float64() < s.Duplicate {
		fate.copies = 2
	}
	if s.Reorder > 0 && f.rng.Float64() < s.Reorder {
		fate.reorder = true
	}
	return fate
}

// heldSignal is a signaling update held back by the reorder fault.
type heldSignal struct {
	update  tg.UpdateClass
	userIDs []int64
	timer   *timer
}

// pushSignalingLocked forwards one signaling update to d through the
// signaling faults. Caller holds n.mu.
func (n *Network) pushSignalingLocked(d *device, u tg.UpdateClass, userIDs ...int64) {
	fate := n.faults.decide()
	for i := 0; i < fate.copies; i++ {
		hold := fate.reorder && i == 0
		if fate.delay > 0 {
			d.delayQ = append(d.delayQ, delayedSignal{
				due: time.Now().Add(fate.delay), update: u, userIDs: userIDs, hold: hold,
			})
			if d.delayTimer == nil {
				n.armDelayLocked(d)
			}
			continue
		}
		n.deliverSignalLocked(d, u, hold, userIDs)
	}
}

// delayedSignal waits in a device's FIFO for the Delay fault: a slow link
// delays packets but keeps their order.
type delayedSignal struct {
	due     time.Time
	update  tg.UpdateClass
	userIDs []int64
	hold    bool
}

// armDelayLocked arms d's delay timer for the head of its queue.
func (n *Network) armDelayLocked(d *device) {
	if len(d.delayQ) == 0 {
		d.delayTimer = nil
		return
	}
	d.delayTimer = n.afterLocked(time.Until(d.delayQ[0].due), func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		d.delayTimer = nil
		if n.closed {
			return
		}
		now := time.Now()
		for len(d.delayQ) > 0 && !d.delayQ[0].due.After(now) {
			it := d.delayQ[0]
			d.delayQ = d.delayQ[1:]
			n.deliverSignalLocked(d, it.update, it.hold, it.userIDs)
		}
		n.armDelayLocked(d)
	})
}

// deliverSignalLocked pushes u to d, first releasing a held packet after it,
// or holds u when hold is set and nothing is held yet.
func (n *Network) deliverSignalLocked(d *device, u tg.UpdateClass, hold bool, userIDs []int64) {
	if hold && d.held == nil && !n.closed {
		h := &heldSignal{update: u, userIDs: userIDs}
		d.held = h
		h.timer = n.afterLocked(max(20*time.Millisecond, n.faults.delay()), func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if d.held == h {
				d.held = nil
				n.pushLocked(d, h.update, h.userIDs...)
			}
		})
		return
	}
	n.pushLocked(d, u, userIDs...)
	if h := d.held; h != nil {
		d.held = nil
		n.stopLocked(h.timer)
		n.pushLocked(d, h.update, h.userIDs...)
	}
}

func (f *Faults) delay() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sig.Delay
}

// stopHeld drops held and delayed packets at shutdown.
func (d *device) stopHeld(n *Network) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := d.held; h != nil {
		d.held = nil
		n.stopLocked(h.timer)
	}
	n.stopLocked(d.delayTimer)
	d.delayTimer = nil
	d.delayQ = nil
}
