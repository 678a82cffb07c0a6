package account

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/gotd/td/tgerr"
)

// State is the connection state of an account.
type State int

// States. InCall and flood waits are reported beside the state in Status.
const (
	// StateOffline: not running.
	StateOffline State = iota
	// StateConnecting: connecting, or reconnecting after a failure.
	StateConnecting
	// StateOnline: logged in, updates flowing; calls can be placed.
	StateOnline
	// StateNeedsLogin: no session, or Telegram ended it; run tgsip login.
	StateNeedsLogin
	// StateFailed: the session file or the configuration is unusable.
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateOffline:
		return "offline"
	case StateConnecting:
		return "connecting"
	case StateOnline:
		return "online"
	case StateNeedsLogin:
		return "needs login"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is an account's state as `tgsip accounts` and the account picker
// see it.
type Status struct {
	Name  string
	State State
	// InCall is set while the account carries a call.
	InCall bool
	// FloodWaitUntil and PeerFloodUntil are when Telegram's last
	// FLOOD_WAIT and PEER_FLOOD limits end (zero or past: none).
	FloodWaitUntil time.Time
	PeerFloodUntil time.Time
	// UserID is the account's Telegram user id once known.
	UserID int64
	// Restarts counts the clients that failed and were replaced after the
	// back-off since Run began.
	Restarts int
	// Err is why the account is not online, if known.
	Err error
}

// String is the one-line summary `tgsip accounts` prints.
func (s Status) String() string {
	out := s.State.String()
	if s.State == StateOnline && s.InCall {
		out = "in call"
	}
	now := time.Now()
	if s.FloodWaitUntil.After(now) {
		out += ", flood wait until " + s.FloodWaitUntil.Format(time.RFC3339)
	}
	if s.PeerFloodUntil.After(now) {
		out += ", peer flood until " + s.PeerFloodUntil.Format(time.RFC3339)
	}
	return out
}

// Status reports the account's state now.
func (a *Account) Status() Status {
	a.mu.Lock()
	s := Status{Name: a.cfg.Name, State: a.state, Err: a.lastErr, Restarts: a.restarts}
	if a.self != nil {
		s.UserID = a.self.ID
	}
	a.mu.Unlock()
	s.InCall = a.engine.ActiveCalls() > 0
	s.FloodWaitUntil, s.PeerFloodUntil = a.limits.get()
	return s
}

// ErrInCall: the account already carries a call (one call per account).
var ErrInCall = errors.New("account in a call")

// Available reports whether the account can place a call now: nil, or why
// not (ErrOffline, ErrNeedsLogin, ErrInCall, or a *FloodWaitError whose
// RetryAfter a SIP 503 can carry). An account picker skips accounts for
// which it is not nil.
func (a *Account) Available() error {
	s := a.Status()
	now := a.opts.Now()
	switch {
	case s.State == StateNeedsLogin:
		return ErrNeedsLogin
	case s.State != StateOnline:
		return ErrOffline
	case s.PeerFloodUntil.After(now):
		return &FloodWaitError{PeerFlood: true, Until: s.PeerFloodUntil, Wait: s.PeerFloodUntil.Sub(now)}
	case s.FloodWaitUntil.After(now):
		return &FloodWaitError{Until: s.FloodWaitUntil, Wait: s.FloodWaitUntil.Sub(now)}
	case s.InCall:
		return ErrInCall
	}
	return nil
}

// limits are an account's flood back-offs, kept in a state file beside
// the session so that a restart does not forget a day-long PEER_FLOOD.
type limits struct {
	path string
	now  func() time.Time

	mu    sync.Mutex
	flood time.Time
	peer  time.Time
}

// Limits are the flood limits of an account as its state file records
// them.
type Limits struct {
	FloodWaitUntil time.Time `json:"flood_wait_until,omitzero"`
	PeerFloodUntil time.Time `json:"peer_flood_until,omitzero"`
}

func newLimits(path string, now func() time.Time) *limits {
	return &limits{path: path, now: now}
}

func loadLimits(path string, now func() time.Time) (*limits, error) {
	l := newLimits(path, now)
	j, err := ReadStateFile(path)
	if err != nil {
		return nil, err
	}
	l.flood, l.peer = j.FloodWaitUntil, j.PeerFloodUntil
	return l, nil
}

// ReadStateFile reads the flood limits recorded beside a session file
// (session_file + ".state"); a missing file means none.
func ReadStateFile(path string) (Limits, error) {
	var j Limits
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return j, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("state file %s: %w", path, err)
	}
	return j, nil
}

func (l *limits) get() (flood, peer time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flood, l.peer
}

// note records a FLOOD_WAIT or PEER_FLOOD answer and returns it as a
// *FloodWaitError (nil for other errors).
func (l *limits) note(err error, peerBackoff time.Duration) *FloodWaitError {
	now := l.now()
	fw := &FloodWaitError{Err: err}
	if d, ok := tgerr.AsFloodWait(err); ok {
		fw.Wait = d
	} else if tgerr.Is(err, "PEER_FLOOD") {
		fw.PeerFlood, fw.Wait = true, peerBackoff
	} else {
		return nil
	}
	fw.Until = now.Add(fw.Wait)
	l.mu.Lock()
	if fw.PeerFlood {
		l.peer = later(l.peer, fw.Until)
	} else {
		l.flood = later(l.flood, fw.Until)
	}
	j := Limits{FloodWaitUntil: l.flood, PeerFloodUntil: l.peer}
	l.mu.Unlock()
	if b, err := json.Marshal(j); err == nil {
		// A lost state file only shortens a back-off after a restart.
		_ = writeFileAtomic(l.path, b, nil)
	}
	return fw
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
