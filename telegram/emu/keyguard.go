package emu

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
)

// The auth-key guard.
//
// gotd's tgtest server (v0.162.0, tgtest/conns.go) keeps its auth keys in
// one map but guards the write (addSession, after a key exchange) and the
// reads (getSession, on every message a connection reads) with two
// different mutexes. A client that finishes its key exchange while
// another connection's message is being looked up is a data race, and
// under load a "concurrent map read and map write" crash of the whole
// emulator. The server's loop is not ours to change, but every byte it
// reads and writes goes through the connections the sniffer hands it, and
// its order per connection is fixed (tgtest/loop.go serveConn):
//
//	read a message → getSession → (rpcHandle: getSession again, decrypt,
//	run the handler) → read the next message …
//	key exchange: … write dh_gen_ok → addSession → read the next message
//
// So the map is only read between the moment a connection's read returns
// data and the start of that connection's next read, and only written
// between a dh_gen_ok write and that connection's next read. keyGuard is
// a read-write lock spanning exactly those windows: a read that returns
// data takes the read side (dropping what the connection held before), a
// dh_gen_ok write takes the write side, and a connection drops what it
// holds when it reads again or closes. Every connection's reads run on
// one goroutine at a time, and the server's handlers never wait for
// another connection, so a writer waits at most for the handlers running
// at that moment.
type keyGuard struct{ mu sync.RWMutex }

// guard wraps c so that its reads and writes take g's sides as above.
func (g *keyGuard) guard(c net.Conn) net.Conn { return &guardedConn{Conn: c, g: g} }

const (
	heldNone int32 = iota
	heldRead
	heldWrite
)

type guardedConn struct {
	net.Conn
	g    *keyGuard
	held atomic.Int32 // heldNone, heldRead or heldWrite
}

// release drops what the connection holds; safe to call more than once
// and from Close on another goroutine.
func (c *guardedConn) release() {
	switch c.held.Swap(heldNone) {
	case heldRead:
		c.g.mu.RUnlock()
	case heldWrite:
		c.g.mu.Unlock()
	}
}

func (c *guardedConn) Read(p []byte) (int, error) {
	c.release()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.g.mu.RLock()
		c.held.Store(heldRead)
	}
	return n, err
}

func (c *guardedConn) Write(p []byte) (int, error) {
	if isDHGenOK(p) {
		c.release()
		c.g.mu.Lock()
		c.held.Store(heldWrite)
	}
	return c.Conn.Write(p)
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// dhGenOK is the constructor of dh_gen_ok, the server's last message of a
// successful key exchange (core.telegram.org/mtproto/auth_key, step 9;
// gotd mt.DhGenOk).
const dhGenOK = 0x3bcbf734

// isDHGenOK reports whether p is a transport frame carrying an unencrypted
// dh_gen_ok: auth_key_id 0 (8 bytes), message id (8), length (4), then the
// constructor. gotd's codecs (proto/codec) write the abridged and
// intermediate frame header and the message in two writes, so the message
// starts the write; the full transport writes one frame with its 8-byte
// header (length and sequence number). A write larger than a small frame
// is never one.
func isDHGenOK(p []byte) bool {
	if len(p) > 256 {
		return false
	}
	for _, off := range [...]int{0, 8} {
		if len(p) < off+24 {
			continue
		}
		if binary.LittleEndian.Uint64(p[off:]) == 0 && binary.LittleEndian.Uint32(p[off+20:]) == dhGenOK {
			return true
		}
	}
	return false
}
