package main

import (
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tgsip/tgsip/telegram/account"
)

// livePoll is how often serve looks at its accounts for the live files
// (an account's "in call" shows in `tgsip accounts` within this).
var livePoll = 500 * time.Millisecond

// publishLive keeps each account's live file (account.LivePath beside its
// session) up to date while serve runs: rewritten when what it says
// changes and every account.LiveHeartbeat, removed by stop, so `tgsip
// accounts` in another process shows what this trunk sees ("in call",
// flood waits) without a client of its own on the session.
func publishLive(accs []*account.Account, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pid := os.Getpid()
		last := make([]account.Live, len(accs))
		written := make([]time.Time, len(accs))
		tick := time.NewTicker(livePoll)
		defer tick.Stop()
		for {
			now := time.Now()
			for i, a := range accs {
				l := account.LiveOf(a.Status(), pid, now)
				same := l.State == last[i].State && l.InCall == last[i].InCall && l.UserID == last[i].UserID
				if same && now.Sub(written[i]) < account.LiveHeartbeat {
					continue
				}
				if err := account.WriteLiveFile(account.LivePath(a.Config().SessionFile), l); err != nil {
					// Only `tgsip accounts` misses it; calls are not affected.
					log.Warn("live state file", "account", a.Name(), "err", err)
					continue
				}
				last[i], written[i] = l, now
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		for _, a := range accs {
			// A file left behind is ignored once stale.
			_ = os.Remove(account.LivePath(a.Config().SessionFile))
		}
	}
}
