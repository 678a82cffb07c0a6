package account

import (
	"testing"

	"github.com/gotd/td/tg"
)

// TestPeerCacheBounded: the cache of users met keeps at most its limit
// however many users the account meets (a trunk meets new callers for
// months), forgets the least recently met or used first, and keeps a user
// who is looked up regularly.
func TestPeerCacheBounded(t *testing.T) {
	const limit = 100
	c := newPeerCache(limit)
	const regular = 1_000_000 // looked up every 10 additions
	c.addUser(&tg.User{ID: regular, AccessHash: 7})
	for id := int64(1); id <= 10_000; id++ {
		c.addUser(&tg.User{ID: id, AccessHash: id})
		if n := c.len(); n > limit {
			t.Fatalf("after %d users: %d kept, limit %d", id, n, limit)
		}
		if id%10 == 0 {
			if p, ok := c.get(regular); !ok || p.AccessHash != 7 {
				t.Fatalf("after %d users: the regular user was forgotten", id)
			}
		}
	}
	if p, ok := c.get(10_000); !ok || p.AccessHash != 10_000 {
		t.Errorf("the last user met is not kept: %v %v", p, ok)
	}
	if _, ok := c.get(10_000 - limit/2 + 1); !ok {
		t.Errorf("a user met within the last limit/2 additions is forgotten")
	}
	if _, ok := c.get(1); ok {
		t.Errorf("the first user met is still kept after 10,000 others")
	}
	// Min users and users without an access hash are never kept.
	c.addUser(&tg.User{ID: 42_000_000, AccessHash: 1, Min: true})
	c.addUser(&tg.User{ID: 42_000_001})
	if _, ok := c.get(42_000_000); ok {
		t.Error("min user kept")
	}
	if _, ok := c.get(42_000_001); ok {
		t.Error("user without access hash kept")
	}
	if d := newPeerCache(0); d.half != defaultPeerCache/2 {
		t.Errorf("default limit %d, want %d", 2*d.half, defaultPeerCache)
	}
}
