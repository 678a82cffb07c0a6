package account

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"go.uber.org/goleak"

	"github.com/tgsip/tgsip/telegram/emu"
)

// One emulated network for the package: every new auth key costs ~0.75 s
// of CPU (research/emulator.md §3).
var (
	network *emu.Network
	keyFile string
	users   = map[string]emu.User{}
)

var testUsers = []emu.User{
	{Phone: "+15550101", FirstName: "Trunk", Username: "trunk"},
	{Phone: "+15550102", FirstName: "Secure", Password: "correct horse"},
	{Phone: "+15550103", FirstName: "Revoked"},
	{Phone: "+15550104", FirstName: "Limited"},
	{Phone: "+15550105", FirstName: "Cacher"},
	{Phone: "+15550201", FirstName: "Callee", Username: "callee"},
	{Phone: "+15550202", FirstName: "Hidden", PhonePrivacy: emu.Nobody},
	{Phone: "+15550203", FirstName: "Stranger"},
}

func TestMain(m *testing.M) {
	if os.Getenv(memEmuEnv) != "" {
		os.Exit(memEmulatorChild())
	}
	goleak.VerifyTestMain(mainM{m})
}

type mainM struct{ m *testing.M }

func (t mainM) Run() int {
	dir, err := os.MkdirTemp("", "account-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer closeFleet()
	network, err = emu.New(emu.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, u := range testUsers {
		su, err := network.AddUser(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		users[u.FirstName] = su
	}
	if err := network.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer network.Close()
	keyFile = filepath.Join(dir, "emu.pem")
	if err := os.WriteFile(keyFile, network.PublicKeyPEM(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return t.m.Run()
}

// testConfig is an account of user name with its session in a fresh
// temporary folder.
func testConfig(t *testing.T, name string) Config {
	t.Helper()
	return Config{
		Name:          strings.ToLower(name),
		Phone:         "+" + users[name].Phone,
		SessionFile:   filepath.Join(t.TempDir(), "sessions", strings.ToLower(name)+".session"),
		APIID:         17349,
		APIHash:       "344583e45741c457fe1862106095a5eb",
		DC:            emu.DC,
		DCAddress:     network.Addr().String(),
		PublicKeyFile: keyFile,
	}
}

// slowCtx bounds what costs big-number CPU (auth keys, SRP), slow under
// -race on a shared machine.
func slowCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// script is a Prompter that answers from lists and records what it was
// told.
type script struct {
	mu        sync.Mutex
	codes     []string
	passwords []string
	notices   []string
	asked     int
	qr        func(ctx context.Context, url string) error
}

func (s *script) Code(ctx context.Context, sent *tg.AuthSentCode) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	if len(s.codes) == 0 {
		return "", fmt.Errorf("no more codes")
	}
	c := s.codes[0]
	s.codes = s.codes[1:]
	return c, nil
}

func (s *script) Password(ctx context.Context, hint string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	if len(s.passwords) == 0 {
		return "", fmt.Errorf("no more passwords")
	}
	p := s.passwords[0]
	s.passwords = s.passwords[1:]
	return p, nil
}

func (s *script) ShowQR(ctx context.Context, url string, expires time.Time) error {
	if s.qr == nil {
		return fmt.Errorf("no QR expected")
	}
	return s.qr(ctx, url)
}

func (s *script) Notice(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notices = append(s.notices, msg)
}

func (s *script) told() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.notices, "\n")
}

// running is an Account whose Run goroutine the test owns.
type running struct {
	*Account
	cancel context.CancelFunc
	done   chan error
}

// start runs an Account for cfg and waits until it is online.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	acc, err := New(cfg, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Account: acc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- acc.Run(ctx) }()
	t.Cleanup(r.stop)
	waitState(t, acc, StateOnline)
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
	r.done <- nil // later stops return at once
	_ = r.Close()
}

// waitState waits for the account to reach s.
func waitState(t *testing.T, a *Account, s State) {
	t.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		ch := a.Changed()
		st := a.Status()
		if st.State == s {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("account %s: state %v (%v), want %v", a.Name(), st.State, st.Err, s)
		}
	}
}
