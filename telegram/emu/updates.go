package emu

import (
	"context"
	"slices"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
)

// device is one auth key: a logged-in (or logging-in) client installation.
// All fields are guarded by Network.mu unless noted.
type device struct {
	keyID  [8]byte
	userID int64 // 0 until signed in

	// login state
	phone       string
	codeHash    string
	pendingUser int64 // signed in with code, awaiting 2FA
	srp         *srpSession

	// sessions are the MTProto session ids seen from this key, most recent
	// last; pushes go to the most recent one that accepts them.
	sessions []tgtest.Session

	// The device's update log: consecutive seq numbers from 1; the oldest
	// delivered entries are trimmed beyond maxLog, base counts them.
	log       []logEntry
	base      int
	delivered int // highest seq such that all ≤ it were sent successfully
	synced    int // seq of the last updates.state handed to the client
	notify    chan struct{}
	running   bool // sender goroutine started

	held       *heldSignal     // signaling held back by the reorder fault
	delayQ     []delayedSignal // signaling waiting out the delay fault
	delayTimer *timer

	// layers is the API layer each session announced; layer the latest.
	layers map[int64]int
	layer  int
}

// logEntry is one pushed tg.Updates, kept encoded: gotd's Encode methods
// write Flags, so a shared object must not be encoded from two goroutines.
type logEntry struct {
	seq  int
	date int
	raw  []byte
	sent bool
}

// rawEncoder writes pre-encoded TL bytes.
type rawEncoder []byte

func (r rawEncoder) Encode(b *bin.Buffer) error {
	b.Put(r)
	return nil
}

// maxLog bounds a device's update log (a long demo run would otherwise keep
// every signaling packet forever).
const maxLog = 2000

func (d *device) lastSeq() int { return d.base + len(d.log) }

// advance moves delivered past entries that have been sent.
func (d *device) advance() {
	for i := d.delivered - d.base; i >= 0 && i < len(d.log) && d.log[i].sent; i++ {
		d.delivered++
	}
}

// deviceLocked returns the device of an auth key, creating it.
func (n *Network) deviceLocked(id [8]byte) *device {
	d := n.devices[id]
	if d == nil {
		d = &device{keyID: id, notify: make(chan struct{}, 1)}
		n.devices[id] = d
	}
	return d
}

// bindLocked records that session s of its auth key made a request and
// returns the device. A new session flushes pending updates to it.
func (n *Network) bindLocked(s tgtest.Session) *device {
	d := n.deviceLocked(s.AuthKey.ID)
	i := slices.IndexFunc(d.sessions, func(x tgtest.Session) bool { return x.ID == s.ID })
	if i == len(d.sessions)-1 && i >= 0 {
		return d
	}
	if i >= 0 {
		d.sessions = slices.Delete(d.sessions, i, i+1)
	}
	d.sessions = append(d.sessions, s)
	if d.lastSeq() > d.delivered {
		n.kickLocked(d)
	}
	return d
}

// devicesOfLocked lists the signed-in devices of a user.
func (n *Network) devicesOfLocked(userID int64) []*device {
	var out []*device
	for _, d := range n.devices {
		if d.userID == userID && userID != 0 {
			out = append(out, d)
		}
	}
	return out
}

// pushLocked appends one update to d's log and wakes its sender. The update
// carries the given users (as d's user sees them). Updates to vanished users
// are swallowed.
func (n *Network) pushLocked(d *device, u tg.UpdateClass, userIDs ...int64) {
	if d == nil || n.closed || n.faults.vanishedLocked(d.userID) {
		return
	}
	e := logEntry{seq: d.lastSeq() + 1, date: int(time.Now().Unix())}
	var b bin.Buffer
	if err := (&tg.Updates{
		Updates: []tg.UpdateClass{u},
		Users:   n.viewsLocked(d.userID, userIDs...),
		Chats:   []tg.ChatClass{},
		Date:    e.date,
		Seq:     e.seq,
	}).Encode(&b); err != nil {
		n.log.Error("encode update", "err", err)
		return
	}
	e.raw = b.Buf
	d.log = append(d.log, e)
	if len(d.log) > maxLog {
		k := min(len(d.log)-maxLog, d.delivered-d.base)
		if len(d.log) > 2*maxLog {
			// A device that never comes back (a client that was
			// deleted) must not hold memory forever; it loses the oldest.
			k = len(d.log) - maxLog
		}
		if k > 0 {
			d.log = slices.Delete(d.log, 0, k)
			d.base += k
			d.delivered = max(d.delivered, d.base)
		}
	}
	n.kickLocked(d)
}

// kickLocked wakes (or starts) d's sender goroutine.
func (n *Network) kickLocked(d *device) {
	if !n.started || n.closed {
		return
	}
	if !d.running {
		d.running = true
		ctx := n.ctx
		n.wg.Go(func() { n.sendLoop(ctx, d) })
	}
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// sendLoop delivers d's unsent log entries in order. It runs on its own
// goroutine so that RPC handlers never wait for a client's socket.
func (n *Network) sendLoop(ctx context.Context, d *device) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.notify:
		}
		for {
			n.mu.Lock()
			var next *logEntry
			for i := d.delivered - d.base; i < len(d.log); i++ {
				if !d.log[i].sent {
					e := d.log[i]
					next = &e
					break
				}
			}
			sessions := slices.Clone(d.sessions)
			n.mu.Unlock()
			if next == nil {
				break
			}
			if !n.sendEntry(ctx, d, sessions, next) {
				break // no live session; a new session will kick us
			}
		}
	}
}

// sendEntry pushes one entry to the most recent live session of d, pruning
// sessions whose connection is gone.
func (n *Network) sendEntry(ctx context.Context, d *device, sessions []tgtest.Session, e *logEntry) bool {
	n.mu.Lock()
	vanished := n.faults.vanishedLocked(d.userID)
	n.mu.Unlock()
	if vanished {
		return false // kept for after Restore
	}
	for i := len(sessions) - 1; i >= 0; i-- {
		s := sessions[i]
		n.mu.Lock()
		layer, ok := d.layers[s.ID]
		if !ok {
			layer = d.layer
		}
		n.mu.Unlock()
		raw, err := n.rawFor(layer, e.raw)
		if err != nil {
			// Skipped, not retried: it would fail the same way again.
			n.log.Error("update cannot be encoded in the client's layer", "seq", e.seq, "err", err)
			n.mu.Lock()
			if i := e.seq - 1 - d.base; i >= 0 {
				d.log[i].sent = true
			}
			d.advance()
			n.mu.Unlock()
			return true
		}
		err = n.srv.Send(ctx, s, tgtest.MessageFromServer, raw)
		n.mu.Lock()
		if err == nil {
			if i := e.seq - 1 - d.base; i >= 0 {
				d.log[i].sent = true
			}
			d.advance()
			n.mu.Unlock()
			return true
		}
		// A dead connection stays in tgtest's table until removed.
		d.sessions = slices.DeleteFunc(d.sessions, func(x tgtest.Session) bool { return x.ID == s.ID })
		n.mu.Unlock()
		n.srv.ForceDisconnect(s)
		if ctx.Err() != nil {
			return false
		}
		n.log.Debug("push failed, session pruned", "session", s.ID, "err", err)
	}
	return false
}

// stateLocked is updates.getState for d.
func (n *Network) stateLocked(d *device) tg.UpdatesState {
	return tg.UpdatesState{Pts: 1, Qts: 0, Date: int(time.Now().Unix()), Seq: d.lastSeq()}
}

// differenceLocked answers updates.getDifference for d. The request carries
// no seq, so the emulator replays every entry not known to be delivered plus
// every entry at or after the client's last date (at-least-once: a client
// that saw a gap may have dropped the update that revealed it).
func (n *Network) differenceLocked(d *device, date int) tg.UpdatesDifferenceClass {
	state := n.stateLocked(d)
	var upd []tg.UpdateClass
	seen := map[int64]bool{}
	var users []tg.UserClass
	for i := range d.log {
		e := &d.log[i]
		if e.seq <= d.synced || (e.seq <= d.delivered && e.date < date) {
			continue
		}
		var decoded tg.Updates
		if err := decoded.Decode(&bin.Buffer{Buf: slices.Clone(e.raw)}); err != nil {
			n.log.Error("decode logged update", "err", err)
			continue
		}
		upd = append(upd, decoded.Updates...)
		for _, u := range decoded.Users {
			if uu, ok := u.(*tg.User); ok && !seen[uu.ID] {
				seen[uu.ID] = true
				users = append(users, u)
			}
		}
		e.sent = true
	}
	d.advance()
	d.synced = state.Seq
	if len(upd) == 0 {
		return &tg.UpdatesDifferenceEmpty{Date: state.Date, Seq: state.Seq}
	}
	return &tg.UpdatesDifference{
		NewMessages:          []tg.MessageClass{},
		NewEncryptedMessages: []tg.EncryptedMessageClass{},
		OtherUpdates:         upd,
		Chats:                []tg.ChatClass{},
		Users:                users,
		State:                state,
	}
}
