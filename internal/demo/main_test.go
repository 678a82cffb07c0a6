package demo

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
	"github.com/gotd/td/tg"
	"go.uber.org/goleak"

	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// One emulated network, the demo users and one test account shared by
// every test (a new auth key costs ~0.75 s of CPU, research/emulator.md §3).
var (
	network *emu.Network
	demo    *Users
	tester  *testAccount
)

// ringTimeout is the emulated Telegram's call_ring_timeout_ms, short so
// that the noanswer test ends quickly.
const ringTimeout = 3 * time.Second

// testAccount is a Telegram user outside the demo with its own engine: it
// calls the demo users, and answers when a demo user calls it.
type testAccount struct {
	user       emu.User
	client     *telegram.Client
	engine     *tgcall.Client
	onIncoming atomic.Pointer[func(*tgcall.Call)]
}

func testLogger() *slog.Logger {
	if os.Getenv("DEMO_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func loopback() *media.Transport {
	return &media.Transport{
		IncludeLoopback: true,
		InterfaceFilter: func(name string) bool { return name == "lo" },
		Logger:          testLogger(),
	}
}

func TestMain(m *testing.M) {
	code := run(m)
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	network, err = emu.New(emu.Options{
		CallReceiveTimeout: ringTimeout,
		CallRingTimeout:    ringTimeout,
		Logger:             testLogger(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer network.Close()
	if err := network.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	u, err := network.AddUser(emu.User{Phone: "+15550100", FirstName: "Tester", Username: "tester_account"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tester = &testAccount{user: u}
	began := time.Now()
	demo, err = Start(ctx, network, Options{Logger: testLogger(), Transport: loopback()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo users:", err)
		return 1
	}
	var wg sync.WaitGroup
	if err := tester.start(ctx, &wg); err != nil {
		fmt.Fprintln(os.Stderr, "tester:", err)
		demo.Close()
		cancel()
		wg.Wait()
		return 1
	}
	fmt.Fprintf(os.Stderr, "demo users and tester logged in in %v\n", time.Since(began).Round(time.Millisecond))
	code := m.Run()
	tester.engine.Close()
	demo.Close()
	for _, c := range network.Calls() {
		if c.EndDate.IsZero() {
			fmt.Fprintf(os.Stderr, "call %d left open on the emulated Telegram\n", c.ID)
			code = 1
		}
	}
	cancel()
	wg.Wait()
	return code
}

// start logs the test account in; its client runs until ctx ends.
func (a *testAccount) start(ctx context.Context, wg *sync.WaitGroup) error {
	d := tg.NewUpdateDispatcher()
	opts := network.ClientOptions()
	opts.UpdateHandler = d
	opts.SessionStorage = &session.StorageMemory{}
	a.client = telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	a.engine = tgcall.NewClient(a.client.API(), tgcall.Options{
		Logger:    testLogger().With("account", "tester"),
		Transport: loopback(),
		MaxCalls:  2, // TestEchoCarriesCallsApart
		OnIncoming: func(c *tgcall.Call) {
			if f := a.onIncoming.Load(); f != nil {
				(*f)(c)
				return
			}
			c.Decline()
		},
	})
	a.engine.Register(d)
	ready := make(chan error, 1)
	wg.Go(func() {
		err := a.client.Run(ctx, func(ctx context.Context) error {
			if err := network.Login(ctx, a.client, a.user.Phone, ""); err != nil {
				return err
			}
			if err := a.engine.Start(ctx); err != nil {
				return err
			}
			ready <- nil
			<-ctx.Done()
			return ctx.Err()
		})
		if err != nil && ctx.Err() == nil {
			ready <- err
		}
	})
	select {
	case err := <-ready:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("not logged in within 30 s")
	}
}
