package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gotd/td/session"
)

// ErrSessionCorrupt is wrapped by every error about a session file that
// exists but cannot be used. Such a file is never overwritten: the operator
// moves it away and logs in again.
var ErrSessionCorrupt = errors.New("session file is corrupt")

// SessionFile stores one account's gotd session in a file of its own.
//
// The file holds the account's auth key, which is as good as the account:
// it is created with mode 0600, replaced atomically (a temporary file in the
// same folder, fsync, rename, fsync of the folder) so that a crash leaves
// either the old or the new session and never a partial one, and its
// content never reaches a log. A file that is present but unreadable,
// malformed or of an unknown version is reported as ErrSessionCorrupt
// rather than treated as absent, because gotd would then start a new
// session and overwrite it.
type SessionFile struct {
	path string

	mu sync.Mutex
	// crash, when set by a test, is called between writing the temporary
	// file and renaming it; returning an error simulates a crash there.
	crash func(tmp string) error
}

var _ session.Storage = (*SessionFile)(nil)

// NewSessionFile returns the storage for path.
func NewSessionFile(path string) *SessionFile { return &SessionFile{path: path} }

// Path is the session file's path.
func (f *SessionFile) Path() string { return f.path }

// String names the file, never its content.
func (f *SessionFile) String() string { return "session file " + f.path }

// sessionJSON mirrors the envelope gotd's session.Loader writes
// ({"Version":1,"Data":{…}}), enough to check a file before gotd uses it.
type sessionJSON struct {
	Version *int `json:"Version"`
	Data    *struct {
		DC      int    `json:"DC"`
		AuthKey []byte `json:"AuthKey"`
	} `json:"Data"`
}

// sessionVersion is gotd's session.Loader format version (session.go
// latestVersion).
const sessionVersion = 1

// Exists reports whether the session file is present.
func (f *SessionFile) Exists() (bool, error) {
	_, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", f, err)
	}
	return true, nil
}

// LoadSession implements session.Storage.
func (f *SessionFile) LoadSession(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable or writable by others (mode %04o): run chmod 600 on it", f, perm)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	if err := checkSession(data); err != nil {
		return nil, fmt.Errorf("%s: %w (%v); move it away and log in again with tgsip login", f, ErrSessionCorrupt, err)
	}
	return data, nil
}

// checkSession validates the envelope. The error never quotes the data.
func checkSession(data []byte) error {
	if len(data) == 0 {
		return errors.New("empty")
	}
	var s sessionJSON
	if err := json.Unmarshal(data, &s); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not JSON at byte %d", se.Offset)
		}
		return errors.New("unexpected JSON layout")
	}
	switch {
	case s.Version == nil || s.Data == nil:
		return errors.New("no Version or Data")
	case *s.Version != sessionVersion:
		return fmt.Errorf("version %d, want %d", *s.Version, sessionVersion)
	case len(s.Data.AuthKey) != 0 && len(s.Data.AuthKey) != 256:
		return fmt.Errorf("auth key of %d bytes, want 256", len(s.Data.AuthKey))
	}
	return nil
}

// StoreSession implements session.Storage: an atomic replace with mode 0600.
func (f *SessionFile) StoreSession(_ context.Context, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeFileAtomic(f.path, data, f.crash)
}

// Remove deletes the session file (after a logout or a revoked session).
func (f *SessionFile) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", f, err)
	}
	return nil
}

// tmpPrefix names the temporary files of writeFileAtomic; leftovers of a
// crash are removed by the next write.
func tmpPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// writeFileAtomic replaces path with data, mode 0600. crash (tests only)
// may abort between the write and the rename, leaving the temporary file
// as a real crash would.
func writeFileAtomic(path string, data []byte, crash func(string) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	removeStale(dir, tmpPrefix(path))
	tmp, err := os.CreateTemp(dir, tmpPrefix(path)+"*") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	ok, crashed := false, false
	defer func() {
		if !ok && !crashed {
			_ = tmp.Close()     // already failing; the first error is the one to report
			_ = os.Remove(name) // likewise
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if crash != nil {
		if err := crash(name); err != nil {
			crashed = true
			return err
		}
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	// The rename is durable only once the folder is synced.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: sync folder: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync folder: %w", path, err)
	}
	return nil
}

// removeStale deletes temporary files a crash left behind.
func removeStale(dir, prefix string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // nothing to clean, or the write reports the problem
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			_ = os.Remove(filepath.Join(dir, e.Name())) // best effort: a leftover is harmless
		}
	}
}
