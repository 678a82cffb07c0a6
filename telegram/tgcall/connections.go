package tgcall

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/media"
)

// reflectors turns phoneCall.connections into reflector relays the way
// tdesktop and ntgcalls build tgcalls' server list (research/tgcalls.md §5.1):
// the server id is the 1-based index of the connection id in the sorted set
// of the phoneConnection ids (TCP ones and ones with a bad tag included), one
// entry per IPv4/IPv6 address. phoneConnectionWebrtc ids are not in the set
// (tdesktop calls_call.cpp CollectEndpointIds matches MTPDphoneConnection
// only; ntgcalls RTCServer::collectEndpointIds takes servers with a peer
// tag): Telegram numbers both kinds from one sequence, and counting a webrtc
// id that sorts between two reflector ids would name our reflector
// candidates differently from the peer's.
func reflectors(conns []tg.PhoneConnectionClass, log *slog.Logger) []media.Reflector {
	var ids []int64
	for _, c := range conns {
		if r, ok := c.(*tg.PhoneConnection); ok {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var out []media.Reflector
	for _, c := range conns {
		r, ok := c.(*tg.PhoneConnection)
		if !ok {
			continue
		}
		if len(r.PeerTag) != 16 {
			log.Warn("ignoring reflector with bad peer_tag", "id", r.ID, "len", len(r.PeerTag))
			continue
		}
		idx, _ := slices.BinarySearch(ids, r.ID)
		if idx+1 > 255 {
			continue
		}
		var tag [16]byte
		copy(tag[:], r.PeerTag)
		for _, ip := range []string{r.IP, r.Ipv6} {
			addr, err := netip.ParseAddr(ip)
			if err != nil || r.Port <= 0 || r.Port > 65535 {
				continue
			}
			out = append(out, media.Reflector{
				ServerID: uint8(idx + 1),
				Addr:     netip.AddrPortFrom(addr, uint16(r.Port)),
				PeerTag:  tag,
				TCP:      r.TCP,
			})
		}
	}
	return out
}

// iceServers turns phoneConnectionWebrtc entries into STUN/TURN servers:
// stun=true is a STUN server, turn=true with credentials a standard TURN
// server (research/tgcalls.md §5.1).
func iceServers(conns []tg.PhoneConnectionClass) []media.ICEServer {
	var out []media.ICEServer
	for _, c := range conns {
		w, ok := c.(*tg.PhoneConnectionWebrtc)
		if !ok {
			continue
		}
		for _, ip := range []string{w.IP, w.Ipv6} {
			addr, err := netip.ParseAddr(ip)
			if err != nil || w.Port <= 0 || w.Port > 65535 {
				continue
			}
			hostport := netip.AddrPortFrom(addr, uint16(w.Port)).String()
			if w.Stun {
				out = append(out, media.ICEServer{URL: "stun:" + hostport})
			}
			if w.Turn && w.Username != "" && w.Password != "" {
				out = append(out, media.ICEServer{URL: "turn:" + hostport + "?transport=udp", Username: w.Username, Password: w.Password})
			}
		}
	}
	return out
}

// wireChangingParameters are custom_parameters flags that change the wire
// format or transport away from what we implement (research/tgcalls.md §3,
// tgcalls v2/InstanceV2Impl.cpp and NativeNetworkingImpl.cpp).
var wireChangingParameters = []string{
	"network_kcp_experiment",        // forces V3 signaling
	"network_use_mtproto",           // replaces DTLS-SRTP
	"network_signaling_nosctp",      // V3 framing without SCTP
	"network_standalone_reflectors", // fixed reflector tags 1/2
}

// checkSelected refuses a phoneCall we cannot honour: a library version we
// do not implement or a custom parameter that changes the wire.
func checkSelected(pc *tg.PhoneCall, versions []string, log *slog.Logger) error {
	if len(pc.Protocol.LibraryVersions) == 0 {
		return fmt.Errorf("%w: none selected", ErrUnsupportedVersion)
	}
	// Clients instantiate library_versions[0] (tdesktop createAndStartController).
	if v := pc.Protocol.LibraryVersions[0]; !slices.Contains(versions, v) {
		return fmt.Errorf("%w: %q", ErrUnsupportedVersion, v)
	}
	data, ok := pc.GetCustomParameters()
	if !ok || data.Data == "" {
		return nil
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data.Data), &params); err != nil {
		log.Warn("ignoring unparsable custom_parameters", "err", err)
		return nil
	}
	log.Info("call custom_parameters", "params", data.Data)
	for _, name := range wireChangingParameters {
		if raw, ok := params[name]; ok && truthy(raw) {
			return fmt.Errorf("%w: %s", ErrUnsupportedParameter, name)
		}
	}
	return nil
}

// truthy reads a JSON flag the way json11 users in tgcalls do: true, or a
// non-zero number.
func truthy(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return n != 0
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		v, err := strconv.ParseBool(s)
		return err == nil && v
	}
	return false
}
