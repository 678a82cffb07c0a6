package emu

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscated2"
	"github.com/gotd/td/proto"
	"github.com/gotd/td/proto/codec"
)

// rwConn is a connection whose stream goes through rw (obfuscated2).
type rwConn struct {
	net.Conn
	rw io.ReadWriter
}

func (c rwConn) Read(p []byte) (int, error)  { return c.rw.Read(p) }
func (c rwConn) Write(p []byte) (int, error) { return c.rw.Write(p) }

// reqPQ sends req_pq_multi over the given transport and waits for resPQ:
// the first exchange of every MTProto client.
func reqPQ(t *testing.T, addr string, c codec.Codec, obfuscated bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	var stream net.Conn = conn
	if obfuscated {
		tagged, ok := c.(codec.TaggedCodec)
		if !ok {
			t.Fatalf("%T has no obfuscated tag", c)
		}
		o := obfuscated2.NewObfuscated2(rand.Reader, conn)
		if err := o.Handshake(tagged.ObfuscatedTag(), DC, mtproxy.Secret{}); err != nil {
			t.Fatal(err)
		}
		stream = rwConn{Conn: conn, rw: o}
	} else if err := c.WriteHeader(stream); err != nil {
		t.Fatal(err)
	}
	var nonce bin.Int128
	if _, err := rand.Read(nonce[:]); err != nil {
		t.Fatal(err)
	}
	var body bin.Buffer
	if err := (&mt.ReqPqMultiRequest{Nonce: nonce}).Encode(&body); err != nil {
		t.Fatal(err)
	}
	var msg bin.Buffer
	if err := (proto.UnencryptedMessage{MessageID: 1 << 32, MessageData: body.Buf}).Encode(&msg); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(stream, &msg); err != nil {
		t.Fatal(err)
	}
	var in bin.Buffer
	if err := c.Read(stream, &in); err != nil {
		t.Fatalf("read resPQ: %v", err)
	}
	var um proto.UnencryptedMessage
	if err := um.Decode(&in); err != nil {
		t.Fatal(err)
	}
	var res mt.ResPQ
	if err := res.Decode(&bin.Buffer{Buf: um.MessageData}); err != nil {
		t.Fatalf("decode resPQ: %v", err)
	}
	if res.Nonce != nonce {
		t.Fatal("resPQ nonce differs")
	}
}

// TestTransports: one port serves abridged, intermediate, padded
// intermediate, full and obfuscated2 over the three tagged ones; a silent
// connection does not hold up the others; HTTP is refused.
func TestTransports(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := ListenAndServe(ctx, Options{PrivateKey: testKey(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	addr := n.Addr().String()

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	for _, tc := range []struct {
		name       string
		codec      func() codec.Codec
		obfuscated bool
	}{
		{"abridged", func() codec.Codec { return codec.Abridged{} }, false},
		{"intermediate", func() codec.Codec { return codec.Intermediate{} }, false},
		{"padded", func() codec.Codec { return codec.PaddedIntermediate{} }, false},
		{"full", func() codec.Codec { return &codec.Full{} }, false},
		{"obfuscated-abridged", func() codec.Codec { return codec.Abridged{} }, true},
		{"obfuscated-intermediate", func() codec.Codec { return codec.Intermediate{} }, true},
		{"obfuscated-padded", func() codec.Codec { return codec.PaddedIntermediate{} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) { reqPQ(t, addr, tc.codec(), tc.obfuscated) })
	}

	t.Run("http refused", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte("POST /api HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		// Closed with the request unread: EOF or a reset, never an answer
		// nor the deadline.
		var b [1]byte
		n, err := conn.Read(b[:])
		var ne net.Error
		if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("HTTP connection: read %d bytes, %v; want it closed", n, err)
		}
	})
}
