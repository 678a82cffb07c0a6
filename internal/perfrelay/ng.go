package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
)

// A client of rtpengine's ng control protocol: a cookie, a space and a
// bencoded dictionary per UDP datagram, answered with the same cookie
// (rtpengine docs, "The NG Control Protocol"). Bencoding is BitTorrent's
// (BEP 3): strings as <len>:<bytes>, integers as i<n>e, lists l…e,
// dictionaries d…e with sorted keys.

func bencode(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case string:
		fmt.Fprintf(buf, "%d:%s", len(v), v)
	case int:
		fmt.Fprintf(buf, "i%de", v)
	case []string:
		buf.WriteByte('l')
		for _, s := range v {
			fmt.Fprintf(buf, "%d:%s", len(s), s)
		}
		buf.WriteByte('e')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('d')
		for _, k := range keys {
			fmt.Fprintf(buf, "%d:%s", len(k), k)
			if err := bencode(buf, v[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('e')
	default:
		return fmt.Errorf("bencode: %T", v)
	}
	return nil
}

// bdecode decodes one value from b and returns the rest.
func bdecode(b []byte) (any, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errors.New("bdecode: short")
	}
	switch c := b[0]; {
	case c == 'i':
		end := bytes.IndexByte(b, 'e')
		if end < 0 {
			return nil, nil, errors.New("bdecode: int")
		}
		n, err := strconv.Atoi(string(b[1:end]))
		return n, b[end+1:], err
	case c == 'l':
		var out []any
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			v, rest, err := bdecode(b)
			if err != nil {
				return nil, nil, err
			}
			out, b = append(out, v), rest
		}
		if len(b) == 0 {
			return nil, nil, errors.New("bdecode: list")
		}
		return out, b[1:], nil
	case c == 'd':
		out := map[string]any{}
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			k, rest, err := bdecode(b)
			if err != nil {
				return nil, nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, nil, errors.New("bdecode: key")
			}
			v, rest, err := bdecode(rest)
			if err != nil {
				return nil, nil, err
			}
			out[ks], b = v, rest
		}
		if len(b) == 0 {
			return nil, nil, errors.New("bdecode: dict")
		}
		return out, b[1:], nil
	case c >= '0' && c <= '9':
		colon := bytes.IndexByte(b, ':')
		if colon < 0 {
			return nil, nil, errors.New("bdecode: string")
		}
		n, err := strconv.Atoi(string(b[:colon]))
		if err != nil || n < 0 || colon+1+n > len(b) {
			return nil, nil, errors.New("bdecode: string length")
		}
		return string(b[colon+1 : colon+1+n]), b[colon+1+n:], nil
	}
	return nil, nil, fmt.Errorf("bdecode: byte %q", b[0])
}

// ngClient talks to one rtpengine over UDP on loopback.
type ngClient struct {
	mu   sync.Mutex // one command at a time: answers are read by cookie
	conn *net.UDPConn
	buf  []byte
}

func dialNG(addr string) (*ngClient, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	return &ngClient{conn: c, buf: make([]byte, 65536)}, nil
}

// call sends one command and returns the answer's dictionary; a result
// other than "ok" is an error.
func (c *ngClient) call(msg map[string]any) (map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cookie [8]byte
	_, _ = rand.Read(cookie[:])
	ck := hex.EncodeToString(cookie[:])
	var buf bytes.Buffer
	buf.WriteString(ck + " ")
	if err := bencode(&buf, msg); err != nil {
		return nil, err
	}
	for try := 0; try < 3; try++ {
		if _, err := c.conn.Write(buf.Bytes()); err != nil {
			return nil, err
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := c.conn.Read(c.buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, err
			}
			b := c.buf[:n]
			sp := bytes.IndexByte(b, ' ')
			if sp < 0 || string(b[:sp]) != ck {
				continue // an answer to an earlier try
			}
			v, _, err := bdecode(b[sp+1:])
			if err != nil {
				return nil, err
			}
			d, ok := v.(map[string]any)
			if !ok {
				return nil, errors.New("ng: answer is not a dictionary")
			}
			if r, _ := d["result"].(string); r != "ok" {
				return nil, fmt.Errorf("ng %v: %v %v", msg["command"], d["result"], d["error-reason"])
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("ng %v: no answer", msg["command"])
}
