package emu

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gotd/td/mtproxy/obfuscated2"
	"github.com/gotd/td/proto/codec"
)

// The MTProto transports one port accepts, told apart by their first bytes
// as Telegram's servers do (core.telegram.org/mtproto/mtproto-transports):
//
//	abridged              0xef
//	intermediate          0xeeeeeeee
//	padded intermediate   0xdddddddd
//	full                  4-byte length, then seq_no 0 (bytes 4..8 zero)
//	obfuscated2           64 random bytes that are none of the above
//	                      (tdesktop and GramJS pick them so: first byte not
//	                      0xef, first word not a tag nor an HTTP verb,
//	                      second word not zero)
//
// gotd's transport.Listen detects the first four itself; obfuscated2 is
// unwrapped here (key derivation in gotd's mtproxy/obfuscated2.Accept), and
// the decrypted protocol tag is put back in front of the stream for it.
// Sniffing runs on the connection's own goroutine with a deadline, so a
// silent client cannot hold up accepting the others.

// Transport names a sniffed MTProto transport.
type Transport string

// Transports the emulator accepts.
const (
	TransportAbridged           Transport = "abridged"
	TransportIntermediate       Transport = "intermediate"
	TransportPaddedIntermediate Transport = "padded intermediate"
	TransportFull               Transport = "full"
	// Obfuscated transports carry the inner transport after a slash.
	TransportObfuscated Transport = "obfuscated2"
)

// sniffTimeout bounds how long a new connection may take to send the bytes
// that name its transport.
const sniffTimeout = 10 * time.Second

// httpVerbs are first words of the HTTP transport, which is not served.
var httpVerbs = [][4]byte{{'H', 'E', 'A', 'D'}, {'P', 'O', 'S', 'T'}, {'G', 'E', 'T', ' '}, {'O', 'P', 'T', 'I'}}

// sniffListener accepts TCP connections and hands out, through Accept,
// connections whose stream begins with a plain transport's tag.
type sniffListener struct {
	ln   net.Listener
	log  *slog.Logger
	keys *keyGuard // see keyguard.go

	conns     chan net.Conn
	done      chan struct{}
	mu        sync.Mutex
	sniffing  map[net.Conn]struct{} // closed by Close
	closed    bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newSniffListener(ln net.Listener, log *slog.Logger) *sniffListener {
	l := &sniffListener{ln: ln, log: log, keys: &keyGuard{}, conns: make(chan net.Conn), done: make(chan struct{}), sniffing: map[net.Conn]struct{}{}}
	l.wg.Go(l.acceptLoop)
	return l
}

func (l *sniffListener) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close() // shutting down
			return
		}
		l.sniffing[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Go(func() {
			sc, tr, err := sniff(c)
			l.mu.Lock()
			delete(l.sniffing, c)
			l.mu.Unlock()
			if err != nil {
				l.log.Info("mtproto connection refused", "remote", c.RemoteAddr().String(), "err", err)
				_ = c.Close() // refused; its close error says nothing more
				return
			}
			l.log.Debug("mtproto connection", "remote", c.RemoteAddr().String(), "transport", string(tr))
			select {
			case l.conns <- l.keys.guard(sc):
			case <-l.done:
				_ = sc.Close() // shutting down
			}
		})
	}
}

// Accept returns the next sniffed connection.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and waits for the sniffing goroutines.
func (l *sniffListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.sniffing {
			_ = c.Close() // unblocks its sniffing goroutine
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Addr is the listening address.
func (l *sniffListener) Addr() net.Addr { return l.ln.Addr() }

// prefixConn replays bytes already read in front of a stream.
type prefixConn struct {
	net.Conn
	r io.Reader
	w io.Writer
}

func (c *prefixConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *prefixConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// sniff reads the first bytes of c and returns a connection that yields a
// plain transport's stream from its start, and the transport's name.
func sniff(c net.Conn) (net.Conn, Transport, error) {
	if err := c.SetReadDeadline(time.Now().Add(sniffTimeout)); err != nil {
		return nil, "", fmt.Errorf("set deadline: %w", err)
	}
	conn, tr, err := sniffStream(c)
	if err != nil {
		return nil, "", err
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, "", fmt.Errorf("clear deadline: %w", err)
	}
	return conn, tr, nil
}

func sniffStream(c net.Conn) (net.Conn, Transport, error) {
	var head [64]byte
	replay := func(n int, tr Transport) (net.Conn, Transport, error) {
		return &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(bytes.Clone(head[:n])), c), w: c}, tr, nil
	}
	if _, err := io.ReadFull(c, head[:1]); err != nil {
		return nil, "", fmt.Errorf("read transport tag: %w", err)
	}
	if head[0] == codec.AbridgedClientStart[0] {
		return replay(1, TransportAbridged)
	}
	if _, err := io.ReadFull(c, head[1:8]); err != nil {
		return nil, "", fmt.Errorf("read transport tag: %w", err)
	}
	first := [4]byte(head[:4])
	switch {
	case first == codec.IntermediateClientStart:
		return replay(8, TransportIntermediate)
	case first == codec.PaddedIntermediateClientStart:
		return replay(8, TransportPaddedIntermediate)
	case binary.LittleEndian.Uint32(head[4:8]) == 0:
		return replay(8, TransportFull)
	}
	for _, v := range httpVerbs {
		if first == v {
			return nil, "", errors.New("HTTP transport is not served")
		}
	}
	if _, err := io.ReadFull(c, head[8:]); err != nil {
		return nil, "", fmt.Errorf("read obfuscated2 init: %w", err)
	}
	rw, md, err := obfuscated2.Accept(&prefixConn{r: io.MultiReader(bytes.NewReader(bytes.Clone(head[:])), c), w: c}, nil)
	if err != nil {
		return nil, "", fmt.Errorf("obfuscated2: %w", err)
	}
	// The init's bytes 56..60 name the inner transport, 60..62 the DC
	// (signed, negative for media DCs; GramJS leaves them random, so the
	// DC is only logged by the caller through the name).
	var inner Transport
	tag := md.Protocol[:]
	switch md.Protocol {
	case codec.Abridged{}.ObfuscatedTag():
		inner, tag = TransportAbridged, tag[:1]
	case codec.IntermediateClientStart:
		inner = TransportIntermediate
	case codec.PaddedIntermediateClientStart:
		inner = TransportPaddedIntermediate
	default:
		return nil, "", fmt.Errorf("obfuscated2: unknown protocol tag %s", hex.EncodeToString(md.Protocol[:]))
	}
	dc := int16(md.DC)
	tr := Transport(fmt.Sprintf("%s/%s dc=%d", TransportObfuscated, inner, dc))
	return &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(bytes.Clone(tag)), rw), w: rw}, tr, nil
}
