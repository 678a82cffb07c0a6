package emu

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"strings"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// layerSamples are answers and updates the emulator sends, as it builds
// them.
func layerSamples() map[string]bin.Object {
	user := &tg.User{ID: 100000001, AccessHash: 42, FirstName: "Alice", Username: "alice", Phone: "10000000001",
		Self: true, Contact: true, Status: &tg.UserStatusRecently{}}
	user.SetFlags()
	proto := tg.PhoneCallProtocol{UDPP2P: true, UDPReflector: true, MinLayer: 65, MaxLayer: 92, LibraryVersions: []string{"9.0.0"}}
	requested := &tg.PhoneCallRequested{ID: 1, AccessHash: 2, Date: 3, AdminID: 4, ParticipantID: 5, GAHash: make([]byte, 32), Protocol: proto}
	requested.SetFlags()
	active := &tg.PhoneCall{P2PAllowed: true, ID: 1, AccessHash: 2, Date: 3, AdminID: 4, ParticipantID: 5,
		GAOrB: []byte{1, 2, 3}, KeyFingerprint: -7, Protocol: proto, StartDate: 9, Connections: []tg.PhoneConnectionClass{
			&tg.PhoneConnection{ID: 1, IP: "127.0.0.1", Port: 5000, PeerTag: make([]byte, 16)},
			&tg.PhoneConnectionWebrtc{ID: 2, IP: "127.0.0.1", Port: 3478, Turn: true, Username: "u", Password: "p"},
		}}
	active.SetFlags()
	discarded := &tg.PhoneCallDiscarded{ID: 1, Reason: &tg.PhoneCallDiscardReasonHangup{}, Duration: 5}
	discarded.SetFlags()
	full := tg.UserFull{ID: 100000001, PhoneCallsAvailable: true, VideoCallsAvailable: true}
	full.SetFlags()
	sent := &tg.AuthSentCode{Type: &tg.AuthSentCodeTypeApp{Length: 5}, PhoneCodeHash: "abc"}
	sent.SetFlags()
	n := &Network{}
	return map[string]bin.Object{
		"user":          user,
		"authorization": &tg.AuthAuthorization{User: user},
		"sentCode":      sent,
		"userFull":      &tg.UsersUserFull{FullUser: full, Chats: []tg.ChatClass{}, Users: []tg.UserClass{user}},
		"resolvedPeer":  &tg.ContactsResolvedPeer{Peer: &tg.PeerUser{UserID: 1}, Chats: []tg.ChatClass{}, Users: []tg.UserClass{user}},
		"requested": &tg.Updates{Updates: []tg.UpdateClass{&tg.UpdatePhoneCall{PhoneCall: requested}},
			Users: []tg.UserClass{user}, Chats: []tg.ChatClass{}, Date: 1, Seq: 2},
		"active":     &tg.PhonePhoneCall{PhoneCall: active, Users: []tg.UserClass{user}},
		"discarded":  &tg.Updates{Updates: []tg.UpdateClass{&tg.UpdatePhoneCall{PhoneCall: discarded}}, Users: []tg.UserClass{}, Chats: []tg.ChatClass{}},
		"signaling":  &tg.Updates{Updates: []tg.UpdateClass{&tg.UpdatePhoneCallSignalingData{PhoneCallID: 1, Data: []byte{1}}}, Users: []tg.UserClass{}, Chats: []tg.ChatClass{}},
		"config":     n.configLocked(),
		"difference": &tg.UpdatesDifferenceEmpty{Date: 1, Seq: 2},
		"users":      &tg.UserClassVector{Elems: []tg.UserClass{user, &tg.UserEmpty{ID: 3}}},
		"dhConfig":   &tg.MessagesDhConfig{G: 3, P: telegramPrime, Version: 1, Random: []byte{1}},
		"password":   &tg.AccountPassword{NewAlgo: &tg.PasswordKdfAlgoUnknown{}, NewSecureAlgo: &tg.SecurePasswordKdfAlgoUnknown{}, SecureRandom: []byte{1}},
	}
}

// TestLayerTables: every answer the emulator sends survives the trip to
// each supported layer and back unchanged, and a user really is written
// with the other layer's constructor.
func TestLayerTables(t *testing.T) {
	tr, err := loadLayers()
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) == 0 {
		t.Fatal("no layer besides the native one")
	}
	if _, ok := tr[198]; !ok {
		t.Fatal("GramJS 2.26's layer 198 missing")
	}
	for layer, lt := range tr {
		for name, obj := range layerSamples() {
			var b bin.Buffer
			if err := obj.Encode(&b); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			down, _, err := lt.down.Transcode(b.Buf)
			if err != nil {
				t.Errorf("layer %d %s down: %v", layer, name, err)
				continue
			}
			up, _, err := lt.up.Transcode(down)
			if err != nil {
				t.Errorf("layer %d %s up: %v", layer, name, err)
				continue
			}
			if !bytes.Equal(up, b.Buf) {
				t.Errorf("layer %d %s changed on the round trip:\n%x\n%x", layer, name, b.Buf, up)
			}
			if name == "user" && binary.LittleEndian.Uint32(down) == tg.UserTypeID {
				t.Errorf("layer %d writes user with layer %d's id", layer, NativeLayer)
			}
		}
	}
}

// TestLayerRefused: a request in a layer without a table is refused with
// CONNECTION_LAYER_INVALID.
func TestLayerRefused(t *testing.T) {
	c := loggedIn(t, "alice")
	var cfg tg.Config
	err := c.client.Invoke(ctxT(t), &tg.InvokeWithLayerRequest{Layer: 150, Query: &tg.HelpGetConfigRequest{}}, &cfg)
	if !tgerr.Is(err, "CONNECTION_LAYER_INVALID") {
		t.Fatalf("layer 150: %v, want CONNECTION_LAYER_INVALID", err)
	}
	// The client announces its own layer again: served again.
	if err := c.client.Invoke(ctxT(t), &tg.InvokeWithLayerRequest{Layer: NativeLayer, Query: &tg.HelpGetConfigRequest{}}, &cfg); err != nil {
		t.Fatalf("layer %d after the refusal: %v", NativeLayer, err)
	}
}

// rawRequest is a request given as its TL bytes.
type rawRequest []byte

func (r rawRequest) Encode(b *bin.Buffer) error { b.Put(r); return nil }

// TestRequestLogs: a method the emulator does not know is logged with its
// hex id, a known method whose body does not decode is logged by name, and
// both get an RPC error, not a dropped connection.
func TestRequestLogs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedWriter{w: &bytes.Buffer{}}
	n, err := ListenAndServe(ctx, Options{PrivateKey: testKey(t), Reflectors: -1,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := startClient(n.ClientOptions(), "logs")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var res tg.Config
	err = c.client.Invoke(ctxSlow(t), rawRequest{0xef, 0xbe, 0xad, 0xde}, &res)
	if !tgerr.Is(err, "INPUT_METHOD_INVALID") {
		t.Errorf("unknown method: %v", err)
	}
	truncated := binary.LittleEndian.AppendUint32(nil, tg.PhoneRequestCallRequestTypeID)
	err = c.client.Invoke(ctxT(t), rawRequest(truncated), &res)
	if !tgerr.Is(err, "INPUT_REQUEST_INVALID") {
		t.Errorf("truncated phone.requestCall: %v", err)
	}
	out := logs.String()
	for _, want := range []string{`msg="method not implemented" id=0xdeadbeef`,
		`msg="request failed to decode" method=phone.requestCall id=0x42ff96ed`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
