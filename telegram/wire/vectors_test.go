package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vectors mirrors testdata/vectors.json, written by testdata/genvectors.sh.
type vectors struct {
	DH struct {
		G                      int      `json:"g"`
		P                      string   `json:"p"`
		Random                 string   `json:"random"`
		ServerRandom           string   `json:"server_random"`
		A                      string   `json:"a"`
		B                      string   `json:"b"`
		GA                     string   `json:"g_a"`
		GB                     string   `json:"g_b"`
		Key                    string   `json:"key"`
		KeyFingerprint         int64    `json:"key_fingerprint"`
		GAHash                 string   `json:"g_a_hash"`
		EmojiIndices           []int    `json:"emoji_indices"`
		Emoji                  []string `json:"emoji"`
		EmojiIndicesIfGAPadded []int    `json:"emoji_indices_if_g_a_padded"`
	} `json:"dh"`
	Signaling []struct {
		SenderIsCaller bool   `json:"sender_is_caller"`
		Body           string `json:"body"`
		MsgKey         string `json:"msg_key"`
		Packet         string `json:"packet"`
	} `json:"signaling"`
	Framing struct {
		CallerSteps []struct {
			Op        string   `json:"op"`
			T         int64    `json:"t"`
			Msg       string   `json:"msg"`
			In        string   `json:"in"`
			Msgs      []string `json:"msgs"`
			Out       []string `json:"out"`
			OutBodies []string `json:"out_bodies"`
			Next      *int64   `json:"next"`
			Error     string   `json:"error"`
		} `json:"caller_steps"`
	} `json:"framing"`
	Reflector struct {
		PeerTag          string `json:"peer_tag"`
		OwnRandom        uint32 `json:"own_random"`
		RemoteRandom     uint32 `json:"remote_random"`
		OwnTag           string `json:"own_tag"`
		Hello            string `json:"hello"`
		Payload          string `json:"payload"`
		ToReflector      string `json:"to_reflector"`
		FromReflector    string `json:"from_reflector"`
		HostnameServerID uint8  `json:"hostname_server_id"`
		Hostname         string `json:"hostname"`
	} `json:"reflector"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func vectorKey(t testing.TB, v *vectors) *Key {
	t.Helper()
	var k Key
	if n := copy(k[:], unhex(t, v.DH.Key)); n != len(k) {
		t.Fatalf("key is %d bytes", n)
	}
	return &k
}

func TestDHVectors(t *testing.T) {
	v := loadVectors(t)
	p := unhex(t, v.DH.P)
	if !bytes.Equal(p, TelegramPrime) {
		t.Fatal("TelegramPrime differs from tdlib DhCache.cpp built_in_good_prime")
	}
	cfg, err := ParseDHConfig(v.DH.G, p)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewExponent(bytes.NewReader(unhex(t, v.DH.Random)), unhex(t, v.DH.ServerRandom))
	if err != nil {
		t.Fatal(err)
	}
	if want := new(big.Int).SetBytes(unhex(t, v.DH.A)); a.Cmp(want) != 0 {
		t.Fatalf("exponent = %x, want %x", a, want)
	}
	b := new(big.Int).SetBytes(unhex(t, v.DH.B))

	ga := Public(cfg, a)
	if got, want := hex.EncodeToString(ga), v.DH.GA; got != want {
		t.Fatalf("g_a = %s, want %s", got, want)
	}
	if len(ga) != 255 {
		t.Fatalf("vector should exercise the minimal encoding, g_a is %d bytes", len(ga))
	}
	gb := Public(cfg, b)
	if got := hex.EncodeToString(gb); got != v.DH.GB {
		t.Fatalf("g_b = %s, want %s", got, v.DH.GB)
	}
	for _, side := range []struct {
		name string
		peer []byte
		exp  *big.Int
	}{{"caller", gb, a}, {"callee", ga, b}} {
		k, err := SharedKey(cfg, side.peer, side.exp)
		if err != nil {
			t.Fatalf("%s: %v", side.name, err)
		}
		if got := hex.EncodeToString(k[:]); got != v.DH.Key {
			t.Fatalf("%s key = %s, want %s", side.name, got, v.DH.Key)
		}
	}

	k := vectorKey(t, v)
	if got := k.Fingerprint(); got != v.DH.KeyFingerprint {
		t.Errorf("Fingerprint() = %d, want %d", got, v.DH.KeyFingerprint)
	}
	if got := hex.EncodeToString(GAHash(ga)); got != v.DH.GAHash {
		t.Errorf("GAHash = %s, want %s", got, v.DH.GAHash)
	}
	emoji := EmojiFingerprint(k, ga)
	if !slicesEqual(emoji[:], v.DH.Emoji) {
		t.Errorf("EmojiFingerprint = %q, want %q", emoji, v.DH.Emoji)
	}
	for i, idx := range v.DH.EmojiIndices {
		if emojiTable[idx] != emoji[i] {
			t.Errorf("emoji %d: table[%d] = %q, got %q", i, idx, emojiTable[idx], emoji[i])
		}
	}
	// A left-padded g_a (as gotd sends) must give tdlib's emoji all the
	// same; the vector shows the padded hash would pick other indices.
	padded := append(make([]byte, 256-len(ga)), ga...)
	if got := EmojiFingerprint(k, padded); got != emoji {
		t.Errorf("EmojiFingerprint(padded g_a) = %q, want %q", got, emoji)
	}
	if slicesEqual(v.DH.EmojiIndices, v.DH.EmojiIndicesIfGAPadded) {
		t.Error("vector does not distinguish padded from minimal g_a")
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEmojiTableMatchesTdlib compares emojiTable with the escape sequences
// of tdlib td/telegram/misc.cpp kept verbatim in testdata.
func TestEmojiTableMatchesTdlib(t *testing.T) {
	b, err := os.ReadFile("testdata/tdlib_emoji_table.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if len(lines) != len(emojiTable) {
		t.Fatalf("tdlib table has %d entries, ours %d", len(lines), len(emojiTable))
	}
	for i, line := range lines {
		want, err := strconv.Unquote(`"` + line + `"`)
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if emojiTable[i] != want {
			t.Errorf("entry %d = %q, want %q", i, emojiTable[i], want)
		}
		if strings.ContainsRune(emojiTable[i], '\uFE0F') {
			t.Errorf("entry %d carries U+FE0F", i)
		}
	}
}

func TestSignalingVectors(t *testing.T) {
	v := loadVectors(t)
	k := vectorKey(t, v)
	if len(v.Signaling) != 2 {
		t.Fatalf("want one vector per direction, have %d", len(v.Signaling))
	}
	for _, sv := range v.Signaling {
		body, packet := unhex(t, sv.Body), unhex(t, sv.Packet)
		got := EncryptSignaling(k, sv.SenderIsCaller, body)
		if !bytes.Equal(got, packet) {
			t.Errorf("sender caller=%v: EncryptSignaling =\n%x\nwant\n%x", sv.SenderIsCaller, got, packet)
		}
		if mk := hex.EncodeToString(got[:16]); mk != sv.MsgKey {
			t.Errorf("sender caller=%v: msg_key %s, want %s", sv.SenderIsCaller, mk, sv.MsgKey)
		}
		// The receiver is the other side.
		dec, err := DecryptSignaling(k, !sv.SenderIsCaller, packet)
		if err != nil || !bytes.Equal(dec, body) {
			t.Errorf("sender caller=%v: DecryptSignaling = %x, %v", sv.SenderIsCaller, dec, err)
		}
		// Our own packet echoed back must not decrypt: the offsets differ
		// per direction.
		if _, err := DecryptSignaling(k, sv.SenderIsCaller, packet); !errors.Is(err, ErrMsgKey) {
			t.Errorf("sender caller=%v: decrypting in the sending direction: %v, want ErrMsgKey", sv.SenderIsCaller, err)
		}
	}
}

func TestFramingVectors(t *testing.T) {
	v := loadVectors(t)
	k := vectorKey(t, v)
	c := NewConnection(k, true)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for i, st := range v.Framing.CallerSteps {
		var out, msgs [][]byte
		var next time.Time
		var err error
		switch st.Op {
		case "send":
			out, err = c.Send(unhex(t, st.Msg), at(st.T))
		case "recv":
			msgs, out, err = c.Receive(unhex(t, st.In), at(st.T))
		case "recv_error":
			_, _, err = c.Receive(unhex(t, st.In), at(st.T))
			if !errors.Is(err, ErrReplayed) {
				t.Fatalf("step %d: error %v, want ErrReplayed", i, err)
			}
			continue
		case "poll":
			out, next = c.Poll(at(st.T))
			var want time.Time
			if st.Next != nil {
				want = at(*st.Next)
			}
			if !next.Equal(want) {
				t.Errorf("step %d: next = %v, want %v", i, next, want)
			}
		default:
			t.Fatalf("step %d: unknown op %q", i, st.Op)
		}
		if err != nil {
			t.Fatalf("step %d (%s at %d): %v", i, st.Op, st.T, err)
		}
		if len(msgs) != len(st.Msgs) {
			t.Fatalf("step %d: delivered %d messages, want %d", i, len(msgs), len(st.Msgs))
		}
		for j := range msgs {
			if got := hex.EncodeToString(msgs[j]); got != st.Msgs[j] {
				t.Errorf("step %d: message %d = %s, want %s", i, j, got, st.Msgs[j])
			}
		}
		if len(out) != len(st.Out) {
			t.Fatalf("step %d (%s at %d): %d packets, want %d", i, st.Op, st.T, len(out), len(st.Out))
		}
		for j := range out {
			if got := hex.EncodeToString(out[j]); got != st.Out[j] {
				body, _ := DecryptSignaling(k, false, out[j])
				t.Errorf("step %d (%s at %d): packet %d body\n%x\nwant\n%s", i, st.Op, st.T, j, body, st.OutBodies[j])
			}
		}
	}
	if c.Unacked() != 0 {
		t.Errorf("Unacked() = %d at the end", c.Unacked())
	}
}

func TestReflectorVectors(t *testing.T) {
	v := loadVectors(t).Reflector
	own, err := NewTag(unhex(t, v.PeerTag), v.OwnRandom)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(own[:]); got != v.OwnTag {
		t.Fatalf("own tag = %s, want %s", got, v.OwnTag)
	}
	if own.Random() != v.OwnRandom {
		t.Fatalf("Random() = %#x", own.Random())
	}
	if got := hex.EncodeToString(AppendHello(nil, own)); got != v.Hello {
		t.Errorf("hello = %s, want %s", got, v.Hello)
	}
	payload := unhex(t, v.Payload)
	prefix := []byte{1, 2, 3}
	got := AppendReflectorData(append([]byte(nil), prefix...), own, v.RemoteRandom, v.OwnRandom, payload)
	if !bytes.Equal(got[:3], prefix) || hex.EncodeToString(got[3:]) != v.ToReflector {
		t.Errorf("data to reflector = %x, want 010203%s", got, v.ToReflector)
	}

	// The emulated reflector reads it and forwards to the other endpoint.
	to, err := ParseToReflector(unhex(t, v.ToReflector))
	if err != nil {
		t.Fatal(err)
	}
	if to.Hello || to.SenderRandom != v.OwnRandom || to.Tag.Random() != v.RemoteRandom || !to.Tag.SameCall(own) || !bytes.Equal(to.Data, payload) {
		t.Errorf("ParseToReflector = %+v", to)
	}
	hello, err := ParseToReflector(unhex(t, v.Hello))
	if err != nil || !hello.Hello || hello.Tag != own || hello.SenderRandom != v.OwnRandom {
		t.Errorf("ParseToReflector(hello) = %+v, %v", hello, err)
	}

	// What our endpoint receives when the peer sends the same payload.
	if got := hex.EncodeToString(AppendToClient(nil, own, v.RemoteRandom, payload)); got != v.FromReflector {
		t.Errorf("AppendToClient = %s, want %s", got, v.FromReflector)
	}
	from, err := ParseFromReflector(unhex(t, v.FromReflector))
	if err != nil {
		t.Fatal(err)
	}
	if from.Service || from.Tag != own || from.SenderRandom != v.RemoteRandom || !bytes.Equal(from.Data, payload) {
		t.Errorf("ParseFromReflector = %+v", from)
	}

	if got := ReflectorHostname(v.HostnameServerID, v.RemoteRandom); got != v.Hostname {
		t.Errorf("ReflectorHostname = %q, want %q", got, v.Hostname)
	}
	id, r, err := ParseReflectorHostname(v.Hostname)
	if err != nil || id != v.HostnameServerID || r != v.RemoteRandom {
		t.Errorf("ParseReflectorHostname = %d, %d, %v", id, r, err)
	}
}
