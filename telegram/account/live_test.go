package account

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLiveFile: a live file reads back while fresh, is ignored once older
// than LiveStale (its serve was killed), is absent without error, and is
// written with mode 0600.
func TestLiveFile(t *testing.T) {
	path := LivePath(filepath.Join(t.TempDir(), "a.session"))
	if _, ok, err := ReadLiveFile(path, time.Now()); ok || err != nil {
		t.Fatalf("no file: ok %v, err %v", ok, err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := LiveOf(Status{State: StateOnline, InCall: true, UserID: 42}, 1234, now)
	if want.State != "in call" {
		t.Fatalf("state %q", want.State)
	}
	if err := WriteLiveFile(path, want); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st, err)
	}
	got, ok, err := ReadLiveFile(path, now.Add(LiveStale))
	if !ok || err != nil || got != want {
		t.Errorf("fresh: %+v ok %v err %v, want %+v", got, ok, err, want)
	}
	if _, ok, err := ReadLiveFile(path, now.Add(LiveStale+time.Second)); ok || err != nil {
		t.Errorf("stale: ok %v, err %v", ok, err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ReadLiveFile(path, now); ok || err == nil {
		t.Errorf("corrupt: ok %v, err %v", ok, err)
	}
}
