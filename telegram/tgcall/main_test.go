package tgcall_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"go.uber.org/goleak"

	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// The emulated network and the accounts are shared by every test of the
// package: a new auth key costs ~0.75 s of CPU (research/emulator.md §3).
var (
	network *emu.Network
	alice   *account // contacts with bob, p2p with everybody
	bob     *account
	carol   *account // nobody may call her
	dave    *account // p2p with nobody: relay only
	erin    *account // outdated app
	frank   *account // vanishes in some tests
	grace   *account
	heidi   *account
)

// Network timeouts of the emulated Telegram (help.getConfig and the
// switch's own timers), short so that timeout tests stay quick.
const (
	receiveTimeout = 3 * time.Second
	ringTimeout    = 4 * time.Second
)

type account struct {
	user      emu.User
	transport *media.Transport // nil: the shared per-call-socket transport
	// connectTimeout overrides the media connect timeout (0: Telegram's,
	// at least tgcalls' 20 s, which signaling under 20% loss may need).
	connectTimeout time.Duration
	// withUpdates runs gotd's updates manager (pts/seq ordering, gap
	// recovery with getDifference) in front of the dispatcher, as a
	// production trunk does.
	withUpdates bool
	// prepareKeys sets tgcall.Options.PrepareKeys.
	prepareKeys bool
	client      *telegram.Client
	engine      *tgcall.Client
	onIncoming  atomic.Pointer[func(*tgcall.Call)]
}

// incoming sets what the account does with its next incoming calls.
func (a *account) incoming(f func(*tgcall.Call)) { a.onIncoming.Store(&f) }

// peer is how a tests names another account to Dial.
func (a *account) peer() tg.InputUserClass {
	return &tg.InputUser{UserID: a.user.ID, AccessHash: a.user.AccessHash}
}

func TestMain(m *testing.M) {
	code := run(m)
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		code = 1
	}
	os.Exit(code)
}

func testLogger() *slog.Logger {
	if os.Getenv("TGCALL_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// loopbackTransport keeps every candidate on 127.0.0.1: tests send traffic
// nowhere else.
func loopbackTransport() *media.Transport {
	return &media.Transport{
		IncludeLoopback: true,
		InterfaceFilter: func(name string) bool { return name == "lo" },
		Logger:          testLogger(),
	}
}

// runCtx and runWG own the accounts' clients; extraAccounts are accounts
// that benchmarks add, closed with the others.
var (
	runCtx        context.Context
	runWG         sync.WaitGroup
	extraAccounts []*account
)

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runCtx = ctx
	var err error
	network, err = emu.New(emu.Options{
		CallReceiveTimeout: receiveTimeout,
		CallRingTimeout:    ringTimeout,
		// Two reflectors and TURN: the emulator numbers them from one
		// sequence with the TURN id between the reflectors', as Telegram
		// interleaves phoneConnection and phoneConnectionWebrtc ids.
		Reflectors: 2,
		TURN:       true,
		Logger:     testLogger(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer network.Close()
	add := func(u emu.User) *account {
		u, err := network.AddUser(u)
		if err != nil {
			panic(err)
		}
		return &account{user: u}
	}
	alice = add(emu.User{Phone: "+15550001", FirstName: "Alice", Username: "alice"})
	bob = add(emu.User{Phone: "+15550002", FirstName: "Bob", Username: "bobby"})
	carol = add(emu.User{Phone: "+15550003", FirstName: "Carol", CallPrivacy: emu.Nobody})
	dave = add(emu.User{Phone: "+15550004", FirstName: "Dave", P2P: emu.Nobody})
	erin = add(emu.User{Phone: "+15550005", FirstName: "Erin", Outdated: true})
	frank = add(emu.User{Phone: "+15550006", FirstName: "Frank"})
	grace = add(emu.User{Phone: "+15550007", FirstName: "Grace"})
	heidi = add(emu.User{Phone: "+15550008", FirstName: "Heidi"})
	grace.withUpdates, heidi.withUpdates = true, true
	// The peer-vanishes test waits for dead media to be noticed; a short
	// connect timeout (it also bounds interruptions) keeps it quick.
	dave.connectTimeout, frank.connectTimeout = 8*time.Second, 8*time.Second
	if err := network.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// Alice is the trunk: all her calls share one UDP port (ICE UDP mux),
	// the production shape; the others use a socket per call.
	mux, muxCloser, err := media.NewSharedPort("127.0.0.1:0", testLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer muxCloser.Close()
	trunkPort = mux.GetListenAddresses()[0].String()
	alice.transport = loopbackTransport()
	alice.transport.UDPMux = mux
	accounts := []*account{alice, bob, carol, dave, erin, frank, grace, heidi}
	wg := &runWG
	fds := openFiles()
	began := time.Now()
	err = startAccounts(ctx, wg, accounts)
	fmt.Fprintf(os.Stderr, "%d accounts logged in in %v\n", len(accounts), time.Since(began).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "accounts:", err)
		cancel()
		wg.Wait()
		return 1
	}
	code := m.Run()
	// Nothing left behind: every call ended on Telegram, and no socket
	// outlived its call (the accounts' own connections are still open).
	for _, c := range network.Calls() {
		if c.EndDate.IsZero() {
			fmt.Fprintf(os.Stderr, "call %d left open on the emulated Telegram: %+v\n", c.ID, c)
			code = 1
		}
	}
	for _, a := range append(accounts, extraAccounts...) {
		a.engine.Close()
	}
	cancel()
	wg.Wait()
	// With every call and client gone, so is every socket they opened
	// (the emulator's side of a client connection may take a moment to
	// see the close).
	deadline := time.Now().Add(5 * time.Second)
	for openFiles() > fds && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := openFiles(); after > fds {
		fmt.Fprintf(os.Stderr, "file descriptors: %d before the accounts started, %d after they stopped\n", fds, after)
		code = 1
	}
	return code
}

var (
	transport = loopbackTransport()
	trunkPort string // alice's shared UDP port
)

func (a *account) mediaTransport() *media.Transport {
	if a.transport != nil {
		return a.transport
	}
	return transport
}

// startAccounts connects, logs in and starts the call engine of each
// account; the clients run until ctx ends, tracked by wg.
func startAccounts(ctx context.Context, wg *sync.WaitGroup, accounts []*account) error {
	ready := make(chan error, len(accounts))
	// Auth-key exchanges are CPU-bound (~0.75 s each); unbounded parallel
	// connects collapse (research/emulator.md §3), so two at a time.
	slots := make(chan struct{}, 2)
	for _, a := range accounts {
		a := a
		d := tg.NewUpdateDispatcher()
		opts := network.ClientOptions()
		opts.UpdateHandler = d
		var mgr *updates.Manager
		if a.withUpdates {
			mgr = updates.New(updates.Config{Handler: d})
			opts.UpdateHandler = mgr
		}
		opts.SessionStorage = &session.StorageMemory{}
		a.client = telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
		a.engine = tgcall.NewClient(a.client.API(), tgcall.Options{
			Logger:      testLogger().With("account", a.user.FirstName),
			Transport:   a.mediaTransport(),
			Timeouts:    tgcall.Timeouts{Connect: a.connectTimeout},
			PrepareKeys: a.prepareKeys,
			OnIncoming: func(c *tgcall.Call) {
				if f := a.onIncoming.Load(); f != nil {
					(*f)(c)
					return
				}
				c.Decline()
			},
		})
		a.engine.Register(d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			released := false
			release := func() {
				if !released {
					released = true
					<-slots
				}
			}
			defer release()
			err := a.client.Run(ctx, func(ctx context.Context) error {
				if err := network.Login(ctx, a.client, a.user.Phone, ""); err != nil {
					return err
				}
				release()
				if err := a.engine.Start(ctx); err != nil {
					return err
				}
				if mgr != nil {
					return mgr.Run(ctx, a.client.API(), a.engine.Self(), updates.AuthOptions{
						OnStart: func(context.Context) { ready <- nil },
					})
				}
				ready <- nil
				<-ctx.Done()
				return ctx.Err()
			})
			if err != nil && ctx.Err() == nil {
				ready <- err
			}
		}()
	}
	timeout := time.After(time.Duration(len(accounts)) * 20 * time.Second)
	for range accounts {
		select {
		case err := <-ready:
			if err != nil {
				return err
			}
		case <-timeout:
			return fmt.Errorf("accounts did not start in time")
		}
	}
	return nil
}

// openFiles counts this process's open file descriptors.
func openFiles() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
