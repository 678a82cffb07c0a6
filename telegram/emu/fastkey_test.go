package emu

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
)

func TestFactor(t *testing.T) {
	for _, tt := range []struct{ pq, p, q uint64 }{
		{0x17ED48941A08F981, 1229739323, 1402015859}, // the MTProto docs' example
		{15, 3, 5},
		{4294967291 * 4294967279, 4294967279, 4294967291}, // the two largest 32-bit primes
	} {
		if p, q := factor(tt.pq); p != tt.p || q != tt.q {
			t.Errorf("factor(%d) = %d, %d; want %d, %d", tt.pq, p, q, tt.p, tt.q)
		}
	}
}

// TestNewSession: a session from NewSession is a key the server knows: a
// stock gotd client loads it, logs in over it and makes calls as that
// user, without a key exchange of its own (its stored key stays the one
// NewSession made).
func TestNewSession(t *testing.T) {
	n := shnet(t)
	u := user(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), slowTimeout)
	defer cancel()
	data, err := n.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store := &session.StorageMemory{}
	if err := (&session.Loader{Storage: store}).Save(ctx, data); err != nil {
		t.Fatal(err)
	}
	opts := n.ClientOptions()
	opts.SessionStorage = store
	c := telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	err = c.Run(ctx, func(ctx context.Context) error {
		if err := n.Login(ctx, c, u.Phone, u.Password); err != nil {
			return err
		}
		self, err := c.Self(ctx)
		if err != nil {
			return err
		}
		if self.ID != u.ID {
			t.Errorf("logged in as %d, want %d", self.ID, u.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := (&session.Loader{Storage: store}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after.AuthKeyID, data.AuthKeyID) || !bytes.Equal(after.AuthKey, data.AuthKey) {
		t.Error("the client replaced the key NewSession made (it ran its own exchange)")
	}
}

// BenchmarkNewSession is the emulator's fast path for a new auth key;
// compare a stock client's ~0.75 s of CPU (research/emulator.md §3).
func BenchmarkNewSession(b *testing.B) {
	n, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := n.NewSession(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}
