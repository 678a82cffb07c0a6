package b2bua

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

// The media tests' emulated Telegram: one network and three accounts shared
// by every test (a new auth key costs ~0.75 s of CPU, research/emulator.md
// §3). mediaTrunk is the trunk's account, mediaUser a Telegram user who
// may go peer-to-peer, mediaRelayUser one who allows p2p with nobody (calls
// with him go through the emulator's reflector).
var (
	mediaNetwork   *emu.Network
	mediaTrunk     *tgAccount
	mediaUser      *tgAccount
	mediaRelayUser *tgAccount
	// mediaTrunkPort is the trunk's shared UDP port.
	mediaTrunkPort string
)

type tgAccount struct {
	user       emu.User
	transport  *media.Transport
	client     *telegram.Client
	engine     *tgcall.Client
	onIncoming atomic.Pointer[func(*tgcall.Call)]
}

func (a *tgAccount) peer() tg.InputUserClass {
	return &tg.InputUser{UserID: a.user.ID, AccessHash: a.user.AccessHash}
}

func TestMain(m *testing.M) {
	code := runMediaNetwork(m)
	// No sipgo goroutine is ignored: sip.Server.Close keeps sipgo from
	// opening UDP sockets of its own while it closes (sip/sweep.go).
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		code = 1
	}
	os.Exit(code)
}

func testLogger() *slog.Logger {
	if os.Getenv("B2BUA_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runMediaNetwork starts the emulated Telegram and logs the accounts in,
// runs the tests, and stops everything again.
func runMediaNetwork(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	mediaNetwork, err = emu.New(emu.Options{Logger: testLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer mediaNetwork.Close()
	add := func(u emu.User) *tgAccount {
		u, err := mediaNetwork.AddUser(u)
		if err != nil {
			panic(err)
		}
		return &tgAccount{user: u}
	}
	mediaTrunk = add(emu.User{Phone: "+15551001", FirstName: "Trunk"})
	mediaUser = add(emu.User{Phone: "+15551002", FirstName: "User"})
	mediaRelayUser = add(emu.User{Phone: "+15551003", FirstName: "Relay", P2P: emu.Nobody})
	if err := mediaNetwork.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Every candidate stays on 127.0.0.1: tests send traffic nowhere else.
	loopback := func() *media.Transport {
		return &media.Transport{
			IncludeLoopback: true,
			InterfaceFilter: func(name string) bool { return name == "lo" },
			Logger:          testLogger(),
		}
	}
	// The trunk's calls share one UDP port (ICE UDP mux), as in
	// production; the users have a socket per call.
	mux, muxCloser, err := media.NewSharedPort("127.0.0.1:0", testLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer muxCloser.Close()
	mediaTrunkPort = mux.GetListenAddresses()[0].String()
	mediaTrunk.transport = loopback()
	mediaTrunk.transport.UDPMux = mux
	users := loopback()
	mediaUser.transport, mediaRelayUser.transport = users, users
	accounts := []*tgAccount{mediaTrunk, mediaUser, mediaRelayUser}
	var wg sync.WaitGroup
	began := time.Now()
	err = startTGAccounts(ctx, &wg, accounts)
	fmt.Fprintf(os.Stderr, "%d accounts logged in in %v\n", len(accounts), time.Since(began).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "accounts:", err)
		cancel()
		wg.Wait()
		return 1
	}
	code := m.Run()
	for _, c := range mediaNetwork.Calls() {
		if c.EndDate.IsZero() {
			fmt.Fprintf(os.Stderr, "call %d left open on the emulated Telegram\n", c.ID)
			code = 1
		}
	}
	stopping := time.Now()
	for _, a := range accounts {
		a.engine.Close()
	}
	cancel()
	wg.Wait()
	fmt.Fprintf(os.Stderr, "accounts stopped in %v\n", time.Since(stopping).Round(time.Millisecond))
	return code
}

// startTGAccounts logs each account in and starts its call engine; the
// clients run until ctx ends, tracked by wg.
func startTGAccounts(ctx context.Context, wg *sync.WaitGroup, accounts []*tgAccount) error {
	ready := make(chan error, len(accounts))
	for _, a := range accounts {
		d := tg.NewUpdateDispatcher()
		opts := mediaNetwork.ClientOptions()
		// gotd's updates manager, as a real client orders updates.
		mgr := updates.New(updates.Config{Handler: d})
		opts.UpdateHandler = mgr
		opts.SessionStorage = &session.StorageMemory{}
		a.client = telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
		a.engine = tgcall.NewClient(a.client.API(), tgcall.Options{
			Logger:    testLogger().With("account", a.user.FirstName),
			Transport: a.transport,
			OnIncoming: func(c *tgcall.Call) {
				if f := a.onIncoming.Load(); f != nil {
					(*f)(c)
					return
				}
				c.Decline()
			},
		})
		a.engine.Register(d)
		wg.Go(func() {
			err := a.client.Run(ctx, func(ctx context.Context) error {
				if err := mediaNetwork.Login(ctx, a.client, a.user.Phone, ""); err != nil {
					return err
				}
				if err := a.engine.Start(ctx); err != nil {
					return err
				}
				return mgr.Run(ctx, a.client.API(), a.engine.Self(), updates.AuthOptions{
					OnStart: func(context.Context) { ready <- nil },
				})
			})
			if err != nil && ctx.Err() == nil {
				ready <- err
			}
		})
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
