package account

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotd/td/session"
)

func validSession(t *testing.T, fill byte) []byte {
	t.Helper()
	key := make([]byte, 256)
	for i := range key {
		key[i] = fill
	}
	var mem session.StorageMemory
	if err := (&session.Loader{Storage: &mem}).Save(context.Background(), &session.Data{DC: 2, AuthKey: key, AuthKeyID: key[:8]}); err != nil {
		t.Fatal(err)
	}
	b, err := mem.Bytes(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSessionFileAtomic: mode 0600, and a crash between writing and
// renaming leaves the previous session whole.
func TestSessionFileAtomic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := NewSessionFile(filepath.Join(dir, "sub", "a.session"))
	if _, err := f.LoadSession(ctx); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	old := validSession(t, 1)
	if err := f.StoreSession(ctx, old); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(f.Path())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}

	f.crash = func(tmp string) error {
		// The new content is complete in the temporary file only.
		b, err := os.ReadFile(tmp)
		if err != nil || len(b) == 0 {
			t.Errorf("temporary file: %d bytes, %v", len(b), err)
		}
		return errors.New("simulated crash")
	}
	if err := f.StoreSession(ctx, validSession(t, 2)); err == nil {
		t.Fatal("crash not reported")
	}
	f.crash = nil
	got, err := f.LoadSession(ctx)
	if err != nil || string(got) != string(old) {
		t.Fatalf("after a crash: %v, same=%v", err, string(got) == string(old))
	}
	ents, _ := os.ReadDir(filepath.Dir(f.Path()))
	if len(ents) != 2 {
		t.Errorf("want the session and the crash's leftover, have %d files", len(ents))
	}
	// The next write cleans up the leftover.
	if err := f.StoreSession(ctx, validSession(t, 3)); err != nil {
		t.Fatal(err)
	}
	ents, _ = os.ReadDir(filepath.Dir(f.Path()))
	if len(ents) != 1 {
		t.Errorf("leftover not removed: %d files", len(ents))
	}
}

// TestSessionFileCorrupt: an unusable file is an error naming the file,
// never its content, and is left alone, also by Login and Run.
func TestSessionFileCorrupt(t *testing.T) {
	ctx := context.Background()
	for name, content := range map[string]string{
		"empty":    "",
		"garbage":  "\x00\x01secret-ish",
		"truncate": string(validSession(t, 7)[:100]),
		"version":  `{"Version":9,"Data":{}}`,
		"shortkey": `{"Version":1,"Data":{"AuthKey":"AAAA"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, "Trunk")
			if err := os.MkdirAll(filepath.Dir(cfg.SessionFile), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.SessionFile, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewSessionFile(cfg.SessionFile).LoadSession(ctx)
			if !errors.Is(err, ErrSessionCorrupt) || !strings.Contains(err.Error(), cfg.SessionFile) {
				t.Fatalf("load: %v", err)
			}
			if content != "" && strings.Contains(err.Error(), content[len(content)/2:]) {
				t.Errorf("error quotes the file: %v", err)
			}
			if _, err := Login(ctx, cfg, LoginCode, &script{}, LoginOptions{}); !errors.Is(err, ErrSessionCorrupt) {
				t.Errorf("login over a corrupt file: %v", err)
			}
			acc, err := New(cfg, Options{Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := acc.Run(ctx); !errors.Is(err, ErrSessionCorrupt) {
				t.Errorf("run: %v", err)
			}
			if s := acc.Status(); s.State != StateFailed {
				t.Errorf("state %v", s.State)
			}
			if b, _ := os.ReadFile(cfg.SessionFile); string(b) != content {
				t.Error("corrupt file was overwritten")
			}
		})
	}
}

func TestSessionFilePermissions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.session")
	if err := os.WriteFile(p, validSession(t, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSessionFile(p).LoadSession(context.Background()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable session: %v", err)
	}
}

func TestRunWithoutSession(t *testing.T) {
	acc, err := New(testConfig(t, "Trunk"), Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.Run(context.Background()); !errors.Is(err, ErrNeedsLogin) {
		t.Errorf("run: %v", err)
	}
	if acc.Status().State != StateNeedsLogin {
		t.Errorf("state %v", acc.Status().State)
	}
}
