package rtpendpoint

import (
	"sync"
	"time"
)

// DefaultResolution is a Scheduler's batching window when NewScheduler is
// given none: reports due within it of each other go out in one wake-up.
const DefaultResolution = 50 * time.Millisecond

// Scheduler sends the RTCP reports of many endpoints from one goroutine and
// one timer. The timer sleeps until the earliest report due; each wake-up
// sends every report due within the resolution. Endpoints join it in New
// (Options.Scheduler) and leave it in Close. The zero value is not usable;
// make one with NewScheduler and Close it after its endpoints.
type Scheduler struct {
	res  time.Duration
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	endpoints map[*Endpoint]struct{}
	closed    bool
}

// NewScheduler starts a scheduler with the given resolution (0 means
// DefaultResolution).
func NewScheduler(resolution time.Duration) *Scheduler {
	if resolution <= 0 {
		resolution = DefaultResolution
	}
	s := &Scheduler{
		res:       resolution,
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		endpoints: map[*Endpoint]struct{}{},
	}
	go s.run()
	return s
}

// Close stops the scheduler's goroutine and waits for it. Endpoints still
// registered send no more reports.
func (s *Scheduler) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
}

// add registers e; its first report is due at e.nextReport.
func (s *Scheduler) add(e *Endpoint) {
	s.mu.Lock()
	s.endpoints[e] = struct{}{}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// remove unregisters e. Once it returns, the scheduler is not inside
// e.tick and will not call it again.
func (s *Scheduler) remove(e *Endpoint) {
	s.mu.Lock()
	delete(s.endpoints, e)
	s.mu.Unlock()
}

func (s *Scheduler) run() {
	defer close(s.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-t.C:
		}
		now := time.Now()
		next := s.pass(now)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), s.res)
		}
		t.Reset(wait)
	}
}

// pass runs the ticks due by now+res and returns the earliest due time
// left (zero with no endpoint). Holding mu across the ticks is what makes
// remove wait for a tick in progress.
func (s *Scheduler) pass(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	horizon := now.Add(s.res)
	var next time.Time
	for e := range s.endpoints {
		if !e.nextReport.After(horizon) {
			e.tick(now)
		}
		if next.IsZero() || e.nextReport.Before(next) {
			next = e.nextReport
		}
	}
	return next
}
