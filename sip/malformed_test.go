package sip

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corpusMessage fills the placeholders of one corpus file.
func corpusMessage(t *testing.T, raw string, s *Server, tp Transport, lport int, n int) []byte {
	t.Helper()
	ap, _ := s.Addr(tp)
	r := strings.NewReplacer(
		"{{host}}", ap.Addr().String(),
		"{{port}}", fmt.Sprint(ap.Port()),
		"{{lport}}", fmt.Sprint(lport),
		"{{transport}}", string(tp),
		"{{branch}}", fmt.Sprintf("mal%d%s", n, tp),
		"{{tag}}", fmt.Sprintf("t%d", n),
		"{{callid}}", fmt.Sprintf("malformed-%d-%s", n, tp),
	)
	return []byte(strings.ReplaceAll(r.Replace(raw), "\n", "\r\n"))
}

func optionsPing(lport int, tp Transport, host string, port uint16, id string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`OPTIONS sip:%[3]s:%[4]d SIP/2.0
Via: SIP/2.0/%[2]s 127.0.0.1:%[1]d;branch=z9hG4bKping%[5]s;rport
From: <sip:probe@127.0.0.1>;tag=p%[5]s
To: <sip:%[3]s:%[4]d>
Call-ID: ping-%[5]s
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

`, lport, tp, host, port, id), "\n", "\r\n"))
}

// readUntil reads SIP messages from r until one contains want.
func readUntil(t *testing.T, read func([]byte) (int, error), want string) {
	t.Helper()
	buf := make([]byte, 65536)
	var acc strings.Builder
	for {
		n, err := read(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v (got %q)", want, err, tail([]byte(acc.String()), 500))
		}
		acc.Write(buf[:n])
		if strings.Contains(acc.String(), want) {
			return
		}
	}
}

func TestMalformedCorpus(t *testing.T) {
	s := newTestServer(t, func(c *Config) {
		c.Trunks = append(c.Trunks, TrunkConfig{Name: "auth", Username: "u", Password: "p"})
	})
	calls(s, func(c *InboundCall) { c.Reject(603, "corpus") })
	start(t, s)
	files, err := filepath.Glob("testdata/malformed/*.sip")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	udpAP, _ := s.Addr(UDP)
	tcpAP, _ := s.Addr(TCP)

	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	ulport := udp.LocalAddr().(*net.UDPAddr).Port
	var tcpConns []net.Conn
	defer func() {
		for _, c := range tcpConns {
			c.Close()
		}
	}()

	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		// UDP: the corpus message, then a ping on the same socket.
		if _, err := udp.WriteToUDP(corpusMessage(t, string(raw), s, UDP, ulport, i), net.UDPAddrFromAddrPort(udpAP)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id := fmt.Sprintf("u%d", i)
		if _, err := udp.WriteToUDP(optionsPing(ulport, UDP, udpAP.Addr().String(), udpAP.Port(), id), net.UDPAddrFromAddrPort(udpAP)); err != nil {
			t.Fatal(err)
		}
		udp.SetReadDeadline(time.Now().Add(5 * time.Second))
		readUntil(t, udp.Read, "Call-ID: ping-"+id)

		// TCP: a connection of its own (a lying Content-Length stalls the
		// stream), then a ping on a fresh connection.
		c, err := net.Dial("tcp", tcpAP.String())
		if err != nil {
			t.Fatal(err)
		}
		tcpConns = append(tcpConns, c)
		lport := c.LocalAddr().(*net.TCPAddr).Port
		if _, err := c.Write(corpusMessage(t, string(raw), s, TCP, lport, i)); err != nil {
			t.Fatalf("%s over tcp: %v", name, err)
		}
		p, err := net.Dial("tcp", tcpAP.String())
		if err != nil {
			t.Fatal(err)
		}
		id = fmt.Sprintf("t%d", i)
		if _, err := p.Write(optionsPing(p.LocalAddr().(*net.TCPAddr).Port, TCP, tcpAP.Addr().String(), tcpAP.Port(), id)); err != nil {
			t.Fatal(err)
		}
		p.SetReadDeadline(time.Now().Add(5 * time.Second))
		readUntil(t, bufio.NewReader(p).Read, "Call-ID: ping-"+id)
		p.Close()
	}
	waitNoCalls(t, s)
	if n := s.panics.Load(); n != 0 {
		t.Fatalf("%d handler panics", n)
	}
}
