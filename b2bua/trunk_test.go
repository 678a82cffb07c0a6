package b2bua

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/account"
)

func TestAccountTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"+4930123456", "+4930123456"},
		{"@alice", "@alice"},
		{"id:42", "42"},
	} {
		p, err := ParsePeer(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := accountTarget(p); got != tc.want {
			t.Errorf("accountTarget(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSIPEndForCollaborators: errors of the account package and of peer
// resolution reach the PBX as the statuses the table promises.
func TestSIPEndForCollaborators(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		retry  time.Duration
	}{
		{"not a Telegram user", resolveError(fmt.Errorf("+1555: %w", account.ErrNotTelegramUser)), 404, 0},
		{"unknown username", resolveError(fmt.Errorf("@x: %w", account.ErrUnknownUsername)), 404, 0},
		{"unknown id", resolveError(fmt.Errorf("user 7: %w", account.ErrUnknownPeer)), 404, 0},
		{"flood wait", fmt.Errorf("resolve: %w", &account.FloodWaitError{Wait: 41200 * time.Millisecond}), 503, 42 * time.Second},
		{"peer flood", &account.FloodWaitError{PeerFlood: true, Wait: time.Hour}, 503, time.Hour},
		{"other", errors.New("boom"), 500, 0},
	} {
		end := sipEndFor(tc.err)
		if end.Status != tc.status || end.RetryAfter != tc.retry {
			t.Errorf("%s: %d Retry-After %v, want %d, %v", tc.name, end.Status, end.RetryAfter, tc.status, tc.retry)
		}
	}
	if err := resolveError(errors.New("network")); errors.Is(err, ErrPeerNotFound) {
		t.Error("a network error marked not found")
	}
}
