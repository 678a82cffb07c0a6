package emu

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"

	"github.com/gotd/td/tg"
	"github.com/pion/turn/v5"

	"github.com/tgsip/tgsip/telegram/wire"
)

// turnRealm is the realm of the emulator's TURN server.
const turnRealm = "tgsip-emu"

// turnRelay is a standard TURN server (RFC 5766, pion/turn) on 127.0.0.1,
// listed in every phoneCall as a phoneConnectionWebrtc entry with turn and
// stun set, as Telegram may list its own (tgcalls.md §5.1).
type turnRelay struct {
	id       int64 // its phoneConnectionWebrtc id (connectionIDs)
	srv      *turn.Server
	addr     netip.AddrPort
	user     string
	password string
}

func listenTURN(ctx context.Context, user, password string, log *slog.Logger) (*turnRelay, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emu: turn listen: %w", err)
	}
	key := turn.GenerateAuthKey(user, turnRealm, password)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: turnRealm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != user {
				return "", nil, false
			}
			return user, key, true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			// Relayed addresses stay on loopback too.
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		_ = pc.Close() // the server error is the one to report
		return nil, fmt.Errorf("emu: turn server: %w", err)
	}
	log.Debug("turn relay listening", "addr", pc.LocalAddr())
	return &turnRelay{
		srv:      srv,
		addr:     pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		user:     user,
		password: password,
	}, nil
}

func (t *turnRelay) close() error { return t.srv.Close() }

// connection is the phoneConnectionWebrtc entry for this server.
func (t *turnRelay) connection() *tg.PhoneConnectionWebrtc {
	return &tg.PhoneConnectionWebrtc{
		Turn:     true,
		Stun:     true,
		ID:       t.id,
		IP:       t.addr.Addr().String(),
		Port:     int(t.addr.Port()),
		Username: t.user,
		Password: t.password,
	}
}

// turnCredentials makes the TURN server's random user name and password.
func (n *Network) turnCredentials() (user, password string, err error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(n.opts.Random, b); err != nil {
		return "", "", fmt.Errorf("emu: turn credentials: %w", err)
	}
	return "emu-" + hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:]), nil
}

// reflectorDrops reports whether the reflectors must lose the traffic of
// tag: it belongs to an active call one of whose parties has vanished.
func (n *Network) reflectorDrops(tag wire.Tag) bool {
	// Every relayed packet asks, and the scan below walks every call the
	// network has seen: with nobody vanished (always, outside fault
	// tests) the answer is no without it.
	if !n.faults.anyVanished() {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.calls {
		if c.info.State != CallActive {
			continue
		}
		if !n.faults.vanishedLocked(c.info.AdminID) && !n.faults.vanishedLocked(c.info.ParticipantID) {
			continue
		}
		for _, pc := range c.info.Connections {
			if len(pc.PeerTag) == 16 && bytes.Equal(pc.PeerTag[:12], tag[:12]) {
				return true
			}
		}
	}
	return false
}
