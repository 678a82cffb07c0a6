package b2bua

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// PoolAccount is what the pool needs from a Telegram account. The account
// package implements it; the pool never talks to Telegram.
type PoolAccount interface {
	// Name is the account's name in the configuration, unique in a pool.
	Name() string
	// Ready reports whether the account can place a call now: logged in
	// and connected. An account that is logged out or needs login is not
	// ready and is skipped. It is called with the pool's lock held: it
	// must not block or call the pool.
	Ready() bool
}

// Pool hands out Telegram accounts, one call per account: an account is a
// channel, like a B channel of an ISDN trunk. It honours per-account
// back-off after FLOOD_WAIT and PEER_FLOOD. It is safe for concurrent use.
type Pool struct {
	mu     sync.Mutex
	slots  []*slot
	byName map[string]*slot
	next   int // round-robin start among accounts no route prefers
	opts   PoolOptions
}

type slot struct {
	acc     PoolAccount
	busy    bool
	until   time.Time // back-off end; zero = none
	why     string
	leaseID uint64
}

// PoolOptions tune a Pool.
type PoolOptions struct {
	// RetryAfter is announced when no account is free and none is waiting
	// out a back-off (all in calls or not ready). Default 30 s.
	RetryAfter time.Duration
	// PeerFloodBackOff is how long an account rests after PEER_FLOOD,
	// which Telegram sends without a wait time. Default 24 h, tg2sip's
	// peer_flood_time: calling again early only deepens the limit.
	PeerFloodBackOff time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// DefaultPeerFloodBackOff is PoolOptions.PeerFloodBackOff when not set.
const DefaultPeerFloodBackOff = 24 * time.Hour

// DefaultRetryAfter is PoolOptions.RetryAfter when not set.
const DefaultRetryAfter = 30 * time.Second

// ErrAccountBusy is an account that already carries a call.
var ErrAccountBusy = errors.New("b2bua: account busy")

// ErrUnknownAccount is an account name the pool does not hold.
var ErrUnknownAccount = errors.New("b2bua: unknown account")

// NoFreeAccountError is Lease finding no account free. It maps to 503 with
// Retry-After (mapping.go).
type NoFreeAccountError struct {
	// RetryAfter is when an account is expected to be free: the earliest
	// end of a back-off, or the pool's default while accounts are in calls
	// or not ready.
	RetryAfter time.Duration
	// Considered is how many accounts were eligible for the lease.
	Considered int
}

func (e *NoFreeAccountError) Error() string {
	return fmt.Sprintf("b2bua: no free Telegram account among %d (retry after %s)", e.Considered, e.RetryAfter)
}

// NewPool makes a pool of accounts; names must be unique and non-empty.
func NewPool(accounts []PoolAccount, opts PoolOptions) (*Pool, error) {
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.PeerFloodBackOff <= 0 {
		opts.PeerFloodBackOff = DefaultPeerFloodBackOff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Pool{byName: make(map[string]*slot, len(accounts)), opts: opts}
	for _, a := range accounts {
		name := a.Name()
		if name == "" {
			return nil, errors.New("b2bua: account without a name")
		}
		if _, dup := p.byName[name]; dup {
			return nil, fmt.Errorf("b2bua: account %q listed twice", name)
		}
		s := &slot{acc: a}
		p.slots = append(p.slots, s)
		p.byName[name] = s
	}
	return p, nil
}

// LeasePrefs steer Lease.
type LeasePrefs struct {
	// Accounts are tried first, in order (a route's account preference).
	Accounts []string
	// Only restricts the lease to Accounts.
	Only bool
}

// Lease is one account held for one call. Release it when the call ends.
type Lease struct {
	p  *Pool
	s  *slot
	id uint64
}

// Account is the leased account.
func (l *Lease) Account() PoolAccount { return l.s.acc }

// Release returns the account to the pool. Calling it again does nothing.
func (l *Lease) Release() {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	if l.s.busy && l.s.leaseID == l.id {
		l.s.busy = false
	}
}

// Lease takes a free account for an outgoing Telegram call. It does not
// wait: a SIP INVITE is answered at once, with 503 and Retry-After when no
// account is free (*NoFreeAccountError).
func (p *Pool) Lease(ctx context.Context, prefs LeasePrefs) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("b2bua: lease: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	var order []*slot
	seen := make(map[*slot]bool, len(p.slots))
	for _, name := range prefs.Accounts {
		if s, ok := p.byName[name]; ok && !seen[s] {
			order = append(order, s)
			seen[s] = true
		}
	}
	if !prefs.Only {
		// Round-robin over the rest spreads calls, and so Telegram's
		// per-account limits, over all accounts.
		n := len(p.slots)
		for i := 0; i < n; i++ {
			s := p.slots[(p.next+i)%n]
			if !seen[s] {
				order = append(order, s)
			}
		}
	}
	var earliest time.Time
	waitsOnBusy := false
	for _, s := range order {
		switch {
		case s.busy:
			waitsOnBusy = true
		case !s.until.IsZero() && now.Before(s.until):
			if earliest.IsZero() || s.until.Before(earliest) {
				earliest = s.until
			}
		case !s.acc.Ready():
			// Logged out or needs login: skipped, no estimate.
		default:
			s.busy = true
			s.leaseID++
			if len(p.slots) > 0 {
				p.next = (p.indexOf(s) + 1) % len(p.slots)
			}
			return &Lease{p: p, s: s, id: s.leaseID}, nil
		}
	}
	retry := p.opts.RetryAfter
	if !earliest.IsZero() {
		d := earliest.Sub(now)
		// A call in progress may end sooner than a long back-off.
		if !waitsOnBusy || d < retry {
			retry = d
		}
	}
	return nil, &NoFreeAccountError{RetryAfter: retry, Considered: len(order)}
}

func (p *Pool) indexOf(s *slot) int {
	for i, x := range p.slots {
		if x == s {
			return i
		}
	}
	return 0
}

// LeaseAccount takes the named account for a call arriving on it (an
// incoming Telegram call). Back-off does not apply: Telegram already
// offered the call. ErrAccountBusy means the account answers busy.
func (p *Pool) LeaseAccount(name string) (*Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAccount, name)
	}
	if s.busy {
		return nil, fmt.Errorf("%w: %q", ErrAccountBusy, name)
	}
	s.busy = true
	s.leaseID++
	return &Lease{p: p, s: s, id: s.leaseID}, nil
}

// BackOff keeps the named account out of Lease until the given time, after
// Telegram answered FLOOD_WAIT_n or PEER_FLOOD. A later end extends a
// running back-off; an earlier one does not shorten it.
func (p *Pool) BackOff(name string, until time.Time, why string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.byName[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAccount, name)
	}
	if until.After(s.until) {
		s.until = until
		s.why = why
	}
	return nil
}

// ObserveError applies the back-off a call's error asks for: FLOOD_WAIT_n
// rests the account n seconds, PEER_FLOOD PeerFloodBackOff. It reports the
// back-off's end, or false when the error asks for none.
func (p *Pool) ObserveError(name string, err error) (time.Time, bool, error) {
	var d time.Duration
	why := ""
	switch o := Classify(err); o {
	case OutcomeFloodWait:
		d, why = retryAfterOf(err), "FLOOD_WAIT"
		if d <= 0 {
			d = p.opts.RetryAfter
		}
	case OutcomePeerFlood:
		d, why = p.opts.PeerFloodBackOff, "PEER_FLOOD"
	default:
		return time.Time{}, false, nil
	}
	until := p.opts.Now().Add(d)
	if err := p.BackOff(name, until, why); err != nil {
		return time.Time{}, false, err
	}
	return until, true, nil
}

// AccountStatus is one account as `tgsip accounts` shows it.
type AccountStatus struct {
	Name         string
	Ready        bool
	InCall       bool
	BackOffUntil time.Time // zero when none is running
	BackOffWhy   string
}

// Status lists the accounts in configuration order.
func (p *Pool) Status() []AccountStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	out := make([]AccountStatus, 0, len(p.slots))
	for _, s := range p.slots {
		st := AccountStatus{Name: s.acc.Name(), Ready: s.acc.Ready(), InCall: s.busy}
		if now.Before(s.until) {
			st.BackOffUntil, st.BackOffWhy = s.until, s.why
		}
		out = append(out, st)
	}
	return out
}
