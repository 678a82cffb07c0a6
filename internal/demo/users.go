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

// Behaviour is what a demo user does with a call.
type Behaviour int

// Behaviours of the demo users.
const (
	// Echo answers and sends back every Opus packet it receives.
	Echo Behaviour = iota
	// Tone answers and plays a 1 kHz tone, ignoring what it hears.
	Tone
	// Busy declines at once (discarded as busy).
	Busy
	// NoAnswer lets the call ring until Telegram's ring timeout.
	NoAnswer
	// Private refuses calls by its privacy settings (calls: nobody), so
	// phone.requestCall fails with USER_PRIVACY_RESTRICTED.
	Private
	// RelayOnly answers like Echo but allows peer-to-peer with nobody, so
	// the call's media goes through a reflector.
	RelayOnly
)

// String is the behaviour's name as Directory spells it.
func (b Behaviour) String() string {
	switch b {
	case Echo:
		return "echo"
	case Tone:
		return "tone"
	case Busy:
		return "busy"
	case NoAnswer:
		return "noanswer"
	case Private:
		return "private"
	case RelayOnly:
		return "relayonly"
	}
	return fmt.Sprintf("Behaviour(%d)", int(b))
}

// answers reports whether the behaviour takes calls (and so needs media).
func (b Behaviour) answers() bool { return b == Echo || b == Tone || b == RelayOnly }

// Entry is one demo user: how to reach it and what it does.
type Entry struct {
	// Name is what a SIP caller dials (sip:echo@…); the trunk's routing
	// maps it to Username through an alias (Aliases), because Telegram
	// usernames need at least 5 characters.
	Name string
	// Phone is the user's number, E.164 with +. The numbers follow
	// Telegram's test-number pattern 99966XYYYY with X the DC (2).
	Phone string
	// Username is the Telegram username, without @.
	Username string
	// FirstName is the name Telegram clients show.
	FirstName string
	// Behaviour is what the user does with a call.
	Behaviour Behaviour
	// Description says so in a few words, for `tgsip demo` to print.
	Description string
}

// directory is the cast; Directory returns a copy.
var directory = []Entry{
	{"echo", "+9996621001", "demo_echo", "Echo", Echo, "answers and sends back what it hears"},
	{"tone", "+9996621002", "demo_tone", "Tone", Tone, "answers and plays a 1 kHz tone"},
	{"busy", "+9996621003", "demo_busy", "Busy", Busy, "declines (busy)"},
	{"noanswer", "+9996621004", "demo_noanswer", "No Answer", NoAnswer, "rings until the ring timeout"},
	{"private", "+9996621005", "demo_private", "Private", Private, "privacy settings refuse every call"},
	{"relayonly", "+9996621006", "demo_relayonly", "Relay Only", RelayOnly, "answers and echoes; p2p disallowed, media through the reflector"},
}

// Directory lists the demo users in a fixed order.
func Directory() []Entry { return append([]Entry(nil), directory...) }

// Lookup finds a demo user by Name, case-sensitively.
func Lookup(name string) (Entry, bool) {
	for _, e := range directory {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// Aliases maps each demo user's Name to "@username", in the form of the
// trunk's routing.sip_to_telegram.aliases, so sip:echo@trunk reaches
// @demo_echo.
func Aliases() map[string]string {
	m := make(map[string]string, len(directory))
	for _, e := range directory {
		m[e.Name] = "@" + e.Username
	}
	return m
}

// Options configure Start. The zero value works on loopback.
type Options struct {
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
	if o.Transport == nil {
		o.Transport = &media.Transport{
			IncludeLoopback: true,
			InterfaceFilter: func(name string) bool { return name == "lo" },
			Logger:          o.Logger,
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
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

	accounts map[string]*account // by Entry.Name; private has no client

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // clients, call media loops, probes
}

// account is one demo user with a client.
type account struct {
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
	runCtx, cancel := context.WithCancel(ctx)
	u := &Users{
		net:      net,
		opts:     opts,
		log:      opts.Logger,
		ctx:      runCtx,
		cancel:   cancel,
		accounts: map[string]*account{},
	}
	var clients []*account
	for _, e := range directory {
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
	// Auth-key exchanges are CPU-bound (~0.75 s each, research/emulator.md
	// §3): two at a time.
	slots := make(chan struct{}, 2)
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
	u.log.Info("demo users ready", "users", len(directory))
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
	opts.SessionStorage = &session.StorageMemory{}
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

// Entry returns the demo user called name with its emulator identity
// (user id and access hash), once Start has added it.
func (u *Users) Entry(name string) (Entry, emu.User, bool) {
	e, ok := Lookup(name)
	if !ok {
		return Entry{}, emu.User{}, false
	}
	user, ok := u.net.UserByPhone(e.Phone)
	return e, user, ok
}
