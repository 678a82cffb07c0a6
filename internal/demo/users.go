package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Options configure Start. The zero value works on loopback.
type Options struct {
	// Users is the cast; nil means Directory(). Build entries with
	// NewEntry (the config's demo.users: a name and a behaviour each).
	Users []Entry
	// Transport carries the demo users' media. Nil: host candidates on the
	// loopback interface only, a socket per call.
	Transport *media.Transport
	// Logger receives the users' logs. Nil discards.
	Logger *slog.Logger
	// MaxCalls is how many calls each answering user carries at once
	// (tgcall Options.MaxCalls). Default 1000, so a load test can ring echo
	// from many trunk accounts at once.
	MaxCalls int
	// ToneFrequency is what tone (and Users.Call) plays, in Hz. Default 1000.
	ToneFrequency float64
	// StartTimeout bounds logging every user in. Default 60 s.
	StartTimeout time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Transport == nil {
		o.Transport = &media.Transport{
			IncludeLoopback: true,
			InterfaceFilter: func(name string) bool { return name == "lo" },
			Logger:          o.Logger,
		}
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = 1000
	}
	if o.ToneFrequency <= 0 {
		o.ToneFrequency = 1000
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = time.Minute
	}
}

// Users are the demo users of one emulated network, logged in and
// answering. Close them before the Network.
type Users struct {
	net  *emu.Network
	opts Options
	log  *slog.Logger

	ctx    context.Context // ends at Close: the clients' and calls' life
	cancel context.CancelFunc

	entries  []Entry
	accounts map[string]*account // by Entry.Name; private has no client

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // clients, call media loops, probes
}

// account is one demo user with a client.
type account struct {
	store  *session.StorageMemory // its session: the key, then the login
	entry  Entry
	user   emu.User
	client *telegram.Client
	engine *tgcall.Client
}

// Start adds every demo user to net (which must be started), logs in those
// that take part in calls, and returns once all of them are ready. The
// users live until Close (or until ctx ends, after which Close must still
// be called to wait for them).
func Start(ctx context.Context, net *emu.Network, opts Options) (*Users, error) {
	opts.setDefaults()
	if !net.Addr().IsValid() {
		return nil, errors.New("demo: the emulated network is not started")
	}
	entries := opts.Users
	if entries == nil {
		entries = Directory()
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Name == "" || seen[e.Name] {
			return nil, fmt.Errorf("demo: user name %q empty or repeated", e.Name)
		}
		seen[e.Name] = true
	}
	runCtx, cancel := context.WithCancel(ctx)
	u := &Users{
		entries:  append([]Entry(nil), entries...),
		net:      net,
		opts:     opts,
		log:      opts.Logger,
		ctx:      runCtx,
		cancel:   cancel,
		accounts: map[string]*account{},
	}
	var clients []*account
	for _, e := range entries {
		user := emu.User{Phone: e.Phone, Username: e.Username, FirstName: e.FirstName, LastName: "(demo)"}
		switch e.Behaviour {
		case Private:
			user.CallPrivacy = emu.Nobody
		case RelayOnly:
			user.P2P = emu.Nobody
		}
		stored, err := net.AddUser(user)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("demo: add %s: %w", e.Name, err)
		}
		if e.Behaviour == Private {
			continue // the emulator refuses its calls; it never logs in
		}
		a := &account{entry: e, user: stored}
		u.accounts[e.Name] = a
		clients = append(clients, a)
	}
	ready := make(chan error, 2*len(clients))
	// Logins two at a time: a client that makes its own auth key spends
	// ~0.75 s of CPU on it (research/emulator.md §3).
	slots := make(chan struct{}, 2)
	// Every auth key first, one at a time, before any client makes a
	// request: the emulator's fast path (NewSession: a real exchange
	// without a stock client's ~0.75 s of checks), and not while other
	// clients send requests, because gotd's tgtest (v0.162) records a new
	// key under another mutex than the one it reads keys under for each
	// request. Should it fail, the client makes its own key.
	for _, a := range clients {
		a.store = &session.StorageMemory{}
		if data, err := net.NewSession(runCtx); err != nil {
			u.log.Debug("no fast session, the client exchanges a key itself", "demo_user", a.entry.Name, "err", err)
		} else if err := (&session.Loader{Storage: a.store}).Save(runCtx, data); err != nil {
			u.log.Debug("fast session not stored", "demo_user", a.entry.Name, "err", err)
		}
	}
	for _, a := range clients {
		u.runAccount(a, slots, ready)
	}
	timeout := time.NewTimer(opts.StartTimeout)
	defer timeout.Stop()
	for range clients {
		var err error
		select {
		case err = <-ready:
		case <-timeout.C:
			err = fmt.Errorf("demo: users not logged in within %v", opts.StartTimeout)
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			u.Close()
			return nil, err
		}
	}
	u.log.Info("demo users ready", "users", len(entries))
	return u, nil
}

// runAccount starts a's client and engine on a goroutine the Users own;
// it reports on ready once the account takes calls, or its error.
func (u *Users) runAccount(a *account, slots chan struct{}, ready chan<- error) {
	log := u.log.With("demo_user", a.entry.Name)
	d := tg.NewUpdateDispatcher()
	// gotd's updates manager orders updates and fills gaps before the
	// engine sees them, as a production account does.
	mgr := updates.New(updates.Config{Handler: d})
	opts := u.net.ClientOptions()
	opts.UpdateHandler = mgr
	opts.SessionStorage = a.store
	a.client = telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	maxCalls := 1
	if a.entry.Behaviour.answers() {
		maxCalls = u.opts.MaxCalls
	}
	a.engine = tgcall.NewClient(a.client.API(), tgcall.Options{
		Logger:     log,
		Transport:  u.opts.Transport,
		MaxCalls:   maxCalls,
		OnIncoming: func(c *tgcall.Call) { u.incoming(a, c) },
	})
	a.engine.Register(d)
	u.wg.Go(func() {
		slots <- struct{}{}
		held := true
		release := func() {
			if held {
				held = false
				<-slots
			}
		}
		defer release()
		err := a.client.Run(u.ctx, func(ctx context.Context) error {
			if err := u.net.Login(ctx, a.client, a.entry.Phone, ""); err != nil {
				return err
			}
			release()
			if err := a.engine.Start(ctx); err != nil {
				return err
			}
			return mgr.Run(ctx, a.client.API(), a.engine.Self(), updates.AuthOptions{
				OnStart: func(context.Context) { ready <- nil },
			})
		})
		if err != nil && u.ctx.Err() == nil {
			log.Error("demo user stopped", "err", err)
			ready <- fmt.Errorf("demo: %s: %w", a.entry.Name, err)
		}
	})
}

// spawn runs f on a goroutine Close waits for; after Close it does nothing
// and reports false.
func (u *Users) spawn(f func()) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	u.wg.Go(f)
	return true
}

// Close hangs up every call of the demo users, logs them out of the
// network and waits for every goroutine they started.
func (u *Users) Close() {
	u.mu.Lock()
	already := u.closed
	u.closed = true
	u.mu.Unlock()
	if already {
		return
	}
	for _, a := range u.accounts {
		a.engine.Close() // hangs up and waits for the call loops
	}
	u.cancel()
	u.wg.Wait()
}

// Entries is the cast Start put on the network, in order.
func (u *Users) Entries() []Entry { return append([]Entry(nil), u.entries...) }

// Entry returns the demo user called name with its emulator identity
// (user id and access hash).
func (u *Users) Entry(name string) (Entry, emu.User, bool) {
	for _, e := range u.entries {
		if e.Name == name {
			user, ok := u.net.UserByPhone(e.Phone)
			return e, user, ok
		}
	}
	return Entry{}, emu.User{}, false
}
