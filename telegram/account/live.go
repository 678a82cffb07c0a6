package account

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// The live file: what a running `tgsip serve` says of an account, so that
// `tgsip accounts` (another process) can show "in call" and the state the
// trunk itself sees, without opening a second client on the same session.
// serve writes it beside the session file (session_file + ".live"),
// atomically (a temporary file renamed over it), when the account's state
// changes and at least every LiveHeartbeat; it removes it when it stops. A
// file older than LiveStale is left over from a serve that did not stop
// cleanly (killed, crashed) and is ignored.

const (
	// LiveHeartbeat is how often serve rewrites an unchanged live file.
	LiveHeartbeat = 10 * time.Second
	// LiveStale is the age after which a live file is not believed.
	LiveStale = 3 * LiveHeartbeat
)

// Live is an account's state as the serve process running it writes it.
type Live struct {
	// PID is the serve process.
	PID int `json:"pid"`
	// State is Status.String(): "online", "in call", "needs login", …
	// with any flood wait.
	State string `json:"state"`
	// InCall is set while the account carries a call.
	InCall bool `json:"in_call"`
	// UserID is the account's Telegram user id once known.
	UserID int64 `json:"user_id,omitzero"`
	// Updated is when serve wrote the file.
	Updated time.Time `json:"updated"`
}

// LiveOf is the live record of a status, written now by process pid.
func LiveOf(s Status, pid int, now time.Time) Live {
	return Live{PID: pid, State: s.String(), InCall: s.InCall, UserID: s.UserID, Updated: now.UTC()}
}

// LivePath is the live file of an account with this session file.
func LivePath(sessionFile string) string { return sessionFile + ".live" }

// WriteLiveFile replaces the live file at path atomically (mode 0600).
func WriteLiveFile(path string, l Live) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, nil)
}

// ReadLiveFile reads a live file. ok is false when there is none, or when
// it is older than LiveStale at now (its serve is gone).
func ReadLiveFile(path string, now time.Time) (l Live, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Live{}, false, nil
	}
	if err != nil {
		return Live{}, false, fmt.Errorf("live file: %w", err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return Live{}, false, fmt.Errorf("live file %s: %w", path, err)
	}
	if now.Sub(l.Updated) > LiveStale {
		return l, false, nil
	}
	return l, true, nil
}
