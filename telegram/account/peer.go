package account

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Peer is a Telegram user this account can call.
type Peer struct {
	ID         int64
	AccessHash int64
	Username   string
	Phone      string // digits, as Telegram returns it
	FirstName  string
	LastName   string
}

// Input is the peer as phone.requestCall takes it.
func (p Peer) Input() tg.InputUserClass {
	return &tg.InputUser{UserID: p.ID, AccessHash: p.AccessHash}
}

// DisplayName is first and last name.
func (p Peer) DisplayName() string {
	return strings.TrimSpace(p.FirstName + " " + p.LastName)
}

func peerOf(u *tg.User) Peer {
	return Peer{ID: u.ID, AccessHash: u.AccessHash, Username: u.Username, Phone: u.Phone,
		FirstName: u.FirstName, LastName: u.LastName}
}

// peerCache keeps the users this account has seen, by id: access hashes
// are per account, so a numeric id is callable only once the account has
// met the user (resolved them, or received a call or update from them).
//
// It is bounded, so that a trunk that meets new users for months keeps a
// flat memory: two generations of at most limit/2 users each; when the
// current one is full it becomes the previous one and the oldest
// generation is dropped. A user met or looked up within the last limit/2
// additions is always kept (a lookup in the previous generation moves the
// user to the current one), so the least recently used go first.
type peerCache struct {
	mu        sync.Mutex
	half      int
	cur, prev map[int64]Peer
	// names maps what Resolve was asked ("@username" in lower case,
	// "+digits") to the user it found, for resolvedTTL; bounded like the
	// users (expired names are dropped when it reaches half).
	names map[string]resolvedName
}

type resolvedName struct {
	id int64
	at time.Time
}

// resolvedTTL is how long a username or number resolved once is taken
// as still naming the same user. Without it every SIP call would ask
// Telegram again (contacts.resolveUsername is flood-limited, and its
// round trip is delay the SIP caller hears before anything rings); with
// it a username that changes hands is followed within minutes. tdlib
// likewise keeps resolved usernames for a while (its resolved-username
// cache) instead of asking per call.
const resolvedTTL = 10 * time.Minute

// defaultPeerCache is Options.PeerCache's default: ~150 B per user, so
// ~1.5 MB per account at most.
const defaultPeerCache = 10000

func newPeerCache(limit int) *peerCache {
	if limit <= 0 {
		limit = defaultPeerCache
	}
	return &peerCache{half: max(1, limit/2), cur: map[int64]Peer{}, names: map[string]resolvedName{}}
}

func (c *peerCache) putLocked(p Peer) {
	c.cur[p.ID] = p
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[int64]Peer, c.half)
	}
}

// len is how many users are kept (a user in both generations counts twice).
func (c *peerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// getLocked finds a kept user; a user found in the previous generation
// moves to the current one.
func (c *peerCache) getLocked(id int64) (Peer, bool) {
	if p, ok := c.cur[id]; ok {
		return p, true
	}
	p, ok := c.prev[id]
	if ok {
		c.putLocked(p)
	}
	return p, ok
}

// byName returns the user name resolved to less than resolvedTTL ago.
func (c *peerCache) byName(name string, now time.Time) (Peer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.names[name]
	if !ok || now.Sub(r.at) >= resolvedTTL {
		delete(c.names, name)
		return Peer{}, false
	}
	return c.getLocked(r.id)
}

// remember notes that name resolved to id. When the names reach the
// users' half limit, the expired ones are dropped, and if none had
// expired all are (they are only a shortcut: Resolve asks Telegram again).
func (c *peerCache) remember(name string, id int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.names) >= c.half {
		for n, r := range c.names {
			if now.Sub(r.at) >= resolvedTTL {
				delete(c.names, n)
			}
		}
		if len(c.names) >= c.half {
			clear(c.names)
		}
	}
	c.names[name] = resolvedName{id: id, at: now}
}

func (c *peerCache) addUser(u *tg.User) {
	if u == nil || u.Min || u.AccessHash == 0 {
		// A "min" user's access hash is not usable for calls
		// (core.telegram.org/api/min).
		return
	}
	c.mu.Lock()
	c.putLocked(peerOf(u))
	c.mu.Unlock()
}

func (c *peerCache) addUsers(us []tg.UserClass) {
	for _, u := range us {
		if uu, ok := u.(*tg.User); ok {
			c.addUser(uu)
		}
	}
}

func (c *peerCache) get(id int64) (Peer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(id)
}

// harvest wraps the update handler so that users carried by updates (the
// caller of an incoming call, for one) land in the cache.
func (c *peerCache) harvest(next telegram.UpdateHandler) telegram.UpdateHandler {
	return telegram.UpdateHandlerFunc(func(ctx context.Context, u tg.UpdatesClass) error {
		switch u := u.(type) {
		case *tg.Updates:
			c.addUsers(u.Users)
		case *tg.UpdatesCombined:
			c.addUsers(u.Users)
		}
		return next.Handle(ctx, u)
	})
}

// Resolve finds the Telegram user a SIP target names:
//
//   - "+E.164" (for example +15551234567): contacts.resolvePhone; when that
//     finds no one (the owner's phone-number privacy hides them from
//     strangers), the number is imported as a contact
//     (contacts.importContacts), which the "who can find me by my number"
//     rule governs separately — tdlib's searchUserByPhoneNumber and the
//     official apps do the same. ErrNotTelegramUser when neither finds a
//     user.
//   - "@username": contacts.resolveUsername; ErrUnknownUsername.
//   - a numeric user id: the access hash this account has cached for it;
//     ErrUnknownPeer when it has never seen the user.
//
// A username or number resolved to a user is remembered for resolvedTTL
// (10 minutes): calls to it within that time ask Telegram nothing.
//
// A flood limit comes back as *FloodWaitError.
func (a *Account) Resolve(ctx context.Context, target string) (Peer, error) {
	target = strings.TrimSpace(target)
	switch {
	case strings.HasPrefix(target, "+"):
		if !isE164(target) {
			return Peer{}, fmt.Errorf("%q: %w", target, ErrBadTarget)
		}
		return a.resolvePhone(ctx, target)
	case strings.HasPrefix(target, "@"):
		name := target[1:]
		if name == "" {
			return Peer{}, fmt.Errorf("%q: %w", target, ErrBadTarget)
		}
		return a.resolveUsername(ctx, name)
	}
	id, err := strconv.ParseInt(target, 10, 64)
	if err != nil || id <= 0 {
		return Peer{}, fmt.Errorf("%q: %w", target, ErrBadTarget)
	}
	if p, ok := a.peers.get(id); ok {
		return p, nil
	}
	return Peer{}, fmt.Errorf("user %d: %w", id, ErrUnknownPeer)
}

func (a *Account) resolvePhone(ctx context.Context, phone string) (Peer, error) {
	if p, ok := a.peers.byName(phone, time.Now()); ok {
		return p, nil
	}
	res, err := a.api.ContactsResolvePhone(ctx, phone)
	if err == nil {
		if p, ok := a.resolved(res); ok {
			a.peers.remember(phone, p.ID, time.Now())
			return p, nil
		}
		return Peer{}, fmt.Errorf("%s: %w", phone, ErrNotTelegramUser)
	}
	if !tgerr.Is(err, "PHONE_NOT_OCCUPIED") {
		return Peer{}, fmt.Errorf("resolve %s: %w", phone, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Peer{}, fmt.Errorf("resolve %s: %w", phone, err)
	}
	clientID := int64(binary.LittleEndian.Uint64(b[:]) >> 1)
	imp, err := a.api.ContactsImportContacts(ctx, []tg.InputPhoneContact{{
		ClientID: clientID, Phone: phone, FirstName: phone,
	}})
	if err != nil {
		return Peer{}, fmt.Errorf("import %s: %w", phone, err)
	}
	a.peers.addUsers(imp.Users)
	for _, ic := range imp.Imported {
		if ic.ClientID != clientID {
			continue
		}
		if p, ok := a.peers.get(ic.UserID); ok {
			a.peers.remember(phone, p.ID, time.Now())
			return p, nil
		}
	}
	return Peer{}, fmt.Errorf("%s: %w", phone, ErrNotTelegramUser)
}

func (a *Account) resolveUsername(ctx context.Context, name string) (Peer, error) {
	// Usernames are case-insensitive on Telegram.
	key := "@" + strings.ToLower(name)
	if p, ok := a.peers.byName(key, time.Now()); ok {
		return p, nil
	}
	res, err := a.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: name})
	if tgerr.Is(err, "USERNAME_NOT_OCCUPIED", "USERNAME_INVALID") {
		return Peer{}, fmt.Errorf("@%s: %w", name, ErrUnknownUsername)
	}
	if err != nil {
		return Peer{}, fmt.Errorf("resolve @%s: %w", name, err)
	}
	if p, ok := a.resolved(res); ok {
		a.peers.remember(key, p.ID, time.Now())
		return p, nil
	}
	// A channel or bot-less chat has the name: not a user to call.
	return Peer{}, fmt.Errorf("@%s: %w", name, ErrUnknownUsername)
}

// resolved caches the users of a contacts.resolvedPeer and returns the
// peer it names when that is a user.
func (a *Account) resolved(res *tg.ContactsResolvedPeer) (Peer, bool) {
	a.peers.addUsers(res.Users)
	pu, ok := res.Peer.(*tg.PeerUser)
	if !ok {
		return Peer{}, false
	}
	return a.peers.get(pu.UserID)
}

// Known returns a user this account has met (resolved, or seen in an
// update such as the phoneCallRequested of an incoming call), for example
// to name the caller of an incoming call to the PBX.
func (a *Account) Known(id int64) (Peer, bool) { return a.peers.get(id) }
