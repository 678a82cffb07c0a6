package b2bua

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip"
)

// stepRecorder is an Observer keeping every event.
type stepRecorder struct {
	mu     sync.Mutex
	events []StepEvent
	added  chan struct{}
}

func newStepRecorder() *stepRecorder { return &stepRecorder{added: make(chan struct{}, 64)} }

func (r *stepRecorder) CallStep(e StepEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
}

func (r *stepRecorder) snapshot() []StepEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor waits until a step s was recorded.
func (r *stepRecorder) waitFor(t *testing.T, s Step) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		for _, e := range r.snapshot() {
			if e.Step == s {
				return
			}
		}
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("step %v not reported within 15 s; got %v", s, r.snapshot())
		}
	}
}

// TestTrunkObserverSteps: a SIP -> Telegram call answered on Telegram and
// hung up by the PBX reports every Step once, in order, with times that
// do not go back, all under the SIP leg's Call-ID, the account on the
// INVITE; the 180 and 200 steps come before the PBX sees them.
func TestTrunkObserverSteps(t *testing.T) {
	rec := newStepRecorder()
	e := newE2E(t, func(o *TrunkOptions) { o.Observer = rec })
	out, user := callUser(t, e, true)
	t.Cleanup(user.Hangup)
	select {
	case <-out.Answered():
	case <-out.Done():
		t.Fatalf("call ended: %v", out.Err())
	case <-time.After(20 * time.Second):
		t.Fatal("no 200")
	}
	answeredAt := time.Now()
	rec.waitFor(t, Step200)
	out.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	rec.waitFor(t, StepDiscard)
	waitClosed(t, user.Done(), "Telegram user's call end")

	got := rec.snapshot()
	var steps []Step
	for i, ev := range got {
		steps = append(steps, ev.Step)
		if ev.SIPCallID == "" || ev.SIPCallID != got[0].SIPCallID {
			t.Errorf("event %d (%v) Call-ID %q, want the call's %q", i, ev.Step, ev.SIPCallID, got[0].SIPCallID)
		}
		if i > 0 && ev.At.Before(got[i-1].At) {
			t.Errorf("%v at %v before %v at %v", ev.Step, ev.At, got[i-1].Step, got[i-1].At)
		}
		if ev.Step == Step200 && ev.At.After(answeredAt) {
			t.Errorf("200 reported at %v, after the PBX got it at %v", ev.At, answeredAt)
		}
		wantAccount := ""
		if ev.Step == StepInvite {
			wantAccount = e2eAccount{mediaTrunk}.Name()
		}
		if ev.Account != wantAccount {
			t.Errorf("%v account %q, want %q", ev.Step, ev.Account, wantAccount)
		}
	}
	want := []Step{StepInvite, StepDial, StepRinging, Step180, StepConnected, Step200, StepSIPEnded, StepDiscard}
	if !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
}

// TestTrunkStepNames: steps print by name in a load run's report.
func TestTrunkStepNames(t *testing.T) {
	for s, want := range map[Step]string{StepInvite: "invite", StepDiscard: "discard", Step(99): "Step(?)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
}
