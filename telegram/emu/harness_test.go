package emu

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"go.uber.org/goleak"
)

// Auth-key exchange costs ~0.75 s of CPU per client, so the package shares
// one Network and a few logged-in clients (emulator.md §3.1).
var (
	shared struct {
		once sync.Once
		err  error
		net  *Network
		// users by name
		users map[string]User
		// clients by name, created on demand
		mu      sync.Mutex
		clients map[string]*tclient
	}
)

// waitTimeout bounds waiting for an event; slowTimeout bounds what costs
// big-number CPU in the client (auth-key exchange, SRP), which -race on a
// shared 2-core machine makes very slow.
const (
	waitTimeout = 10 * time.Second
	slowTimeout = 120 * time.Second
)

type teardownM struct{ m *testing.M }

func (t teardownM) Run() int {
	code := t.m.Run()
	shared.mu.Lock()
	for _, c := range shared.clients {
		c.close()
	}
	shared.mu.Unlock()
	if shared.net != nil {
		_ = shared.net.Close() // Close never fails
	}
	return code
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(teardownM{m})
}

// sharedUsers are the accounts of the shared network.
var sharedUsers = []User{
	{Phone: "+10000000001", Username: "alice", FirstName: "Alice"},
	{Phone: "+10000000002", Username: "bobby", FirstName: "Bob", P2P: Nobody},
	{Phone: "+10000000003", Username: "carol", FirstName: "Carol", Password: "hunter2"},
	{Phone: "+10000000004", Username: "david", FirstName: "Dave", CallPrivacy: Contacts},
	{Phone: "+10000000005", Username: "erica", FirstName: "Erin"}, // blocks alice
	{Phone: "+10000000006", Username: "frank", FirstName: "Frank", Outdated: true},
	{Phone: "+10000000007", Username: "ghost", FirstName: "Ghost"}, // never online
	{Phone: "+10000000008", Username: "nobody", FirstName: "Private", CallPrivacy: Nobody},
	{Phone: "+10000000009", Username: "victor", FirstName: "Victor"}, // vanishes
	{Phone: "+10000000010", Username: "wendy", FirstName: "Wendy"},   // vanishes, media cut
}

func shnet(t *testing.T) *Network {
	t.Helper()
	shared.once.Do(func() {
		n, err := New(Options{
			PrivateKey:         testKey(t),
			CallReceiveTimeout: 1500 * time.Millisecond,
			CallRingTimeout:    1500 * time.Millisecond,
			CallConnectTimeout: 10 * time.Second,
			Reflectors:         2,
			TURN:               true,
		})
		if err != nil {
			shared.err = err
			return
		}
		shared.users = map[string]User{}
		for _, u := range sharedUsers {
			su, err := n.AddUser(u)
			if err != nil {
				shared.err = err
				return
			}
			shared.users[u.Username] = su
		}
		// erin blocks alice
		n.mu.Lock()
		n.byUsername["erica"].Blocked = []int64{shared.users["alice"].ID}
		n.mu.Unlock()
		if err := n.Start(context.Background()); err != nil {
			shared.err = err
			return
		}
		shared.net = n
		shared.clients = map[string]*tclient{}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.net
}

func user(t *testing.T, name string) User {
	shnet(t)
	u, ok := shared.users[name]
	if !ok {
		t.Fatalf("no user %s", name)
	}
	return u
}

// loggedIn returns a shared client signed in as the named user.
func loggedIn(t *testing.T, name string) *tclient {
	t.Helper()
	n := shnet(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if c := shared.clients[name]; c != nil {
		return c
	}
	u := user(t, name)
	c, err := startClient(n.ClientOptions(), name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), slowTimeout)
	defer cancel()
	if err := n.Login(ctx, c.client, u.Phone, u.Password); err != nil {
		c.close()
		t.Fatal(err)
	}
	if err := c.runUpdates(ctx); err != nil {
		c.close()
		t.Fatal(err)
	}
	shared.clients[name] = c
	return c
}

// tclient is a gotd client under test with an update collector.
type tclient struct {
	name   string
	client *telegram.Client
	api    *tg.Client
	self   *tg.User

	cancel context.CancelFunc
	wg     sync.WaitGroup
	runCtx context.Context

	mgrRun func(ctx context.Context, selfID int64) error

	mu      sync.Mutex
	updates []tg.UpdateClass
	signal  chan struct{}
}

// startClient connects a fresh gotd client (a new auth key).
func startClient(opts telegram.Options, name string) (*tclient, error) {
	c := &tclient{name: name, signal: make(chan struct{})}
	mgr := updates.New(updates.Config{Handler: telegram.UpdateHandlerFunc(c.handle)})
	opts.UpdateHandler = mgr
	opts.SessionStorage = &session.StorageMemory{}
	c.client = telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	c.api = c.client.API()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.runCtx = ctx
	ready := make(chan error, 1)
	c.wg.Go(func() {
		err := c.client.Run(ctx, func(ctx context.Context) error {
			ready <- nil
			<-ctx.Done()
			return ctx.Err()
		})
		select {
		case ready <- err:
		default:
		}
	})
	select {
	case err := <-ready:
		if err != nil {
			cancel()
			c.wg.Wait()
			return nil, fmt.Errorf("client %s: %w", name, err)
		}
	case <-time.After(slowTimeout):
		cancel()
		c.wg.Wait()
		return nil, fmt.Errorf("client %s: not ready", name)
	}
	c.mgrRun = func(ctx context.Context, selfID int64) error {
		started := make(chan struct{})
		c.wg.Go(func() {
			err := mgr.Run(c.runCtx, c.api, selfID, updates.AuthOptions{OnStart: func(context.Context) { close(started) }})
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(os.Stderr, "updates manager %s: %v\n", name, err)
			}
		})
		select {
		case <-started:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c, nil
}

// runUpdates fetches self and starts gotd's updates manager.
func (c *tclient) runUpdates(ctx context.Context) error {
	self, err := c.client.Self(ctx)
	if err != nil {
		return err
	}
	c.self = self
	return c.mgrRun(ctx, self.ID)
}

func (c *tclient) close() {
	c.cancel()
	c.wg.Wait()
}

func (c *tclient) handle(ctx context.Context, u tg.UpdatesClass) error {
	var list []tg.UpdateClass
	switch u := u.(type) {
	case *tg.Updates:
		list = u.Updates
	case *tg.UpdatesCombined:
		list = u.Updates
	case *tg.UpdateShort:
		list = []tg.UpdateClass{u.Update}
	}
	c.mu.Lock()
	c.updates = append(c.updates, list...)
	close(c.signal)
	c.signal = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// waitUpdate waits for (and consumes) the first update matching pred.
func (c *tclient) waitUpdate(t *testing.T, what string, pred func(tg.UpdateClass) bool) tg.UpdateClass {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i, u := range c.updates {
			if pred(u) {
				c.updates = append(c.updates[:i:i], c.updates[i+1:]...)
				c.mu.Unlock()
				return u
			}
		}
		sig := c.signal
		c.mu.Unlock()
		select {
		case <-sig:
		case <-deadline.C:
			t.Fatalf("%s: timed out waiting for %s", c.name, what)
		}
	}
}

// waitCall waits for an updatePhoneCall of call id whose phoneCall has type T.
func waitCall[T tg.PhoneCallClass](t *testing.T, c *tclient, id int64) T {
	t.Helper()
	var zero T
	u := c.waitUpdate(t, fmt.Sprintf("%T for call %d", zero, id), func(u tg.UpdateClass) bool {
		pc, ok := u.(*tg.UpdatePhoneCall)
		if !ok {
			return false
		}
		v, ok := pc.PhoneCall.(T)
		return ok && (id == 0 || v.GetID() == id)
	})
	return u.(*tg.UpdatePhoneCall).PhoneCall.(T)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func ctxSlow(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), slowTimeout)
	t.Cleanup(cancel)
	return ctx
}

var testKeyOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// testKey is one RSA key for every Network of the package: generating one
// is slow under -race.
func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := testKeyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
