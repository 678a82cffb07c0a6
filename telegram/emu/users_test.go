package emu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadUsers(t *testing.T) {
	p := writeFile(t, `users:
  - phone: "+10000000001"
    username: alice
    first_name: Alice
    call_privacy: contacts
    p2p: nobody
    contacts: [7]
  - id: 7
    phone: "+10000000002"
    password: pw
    outdated: true
`)
	us, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].CallPrivacy != Contacts || us[0].P2P != Nobody || us[0].Contacts[0] != 7 ||
		us[1].ID != 7 || us[1].Password != "pw" || !us[1].Outdated {
		t.Errorf("%+v", us)
	}
}

func TestLoadUsersStrict(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"users:\n  - phone: \"1\"\n    nickname: x\n", "[3:5] unknown field \"nickname\""},
		{"users:\n  - phone: \"1\"\n    call_privacy: friends\n", "friends"},
		{"users:\n  - phone: \"1\"\n    contacts: [a]\n", "[3:"},
		{"people: []\n", "unknown field \"people\""},
	} {
		_, err := LoadUsers(writeFile(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.body, err, tc.want)
		}
	}
}

func TestAddUserValidation(t *testing.T) {
	n, err := New(Options{Reflectors: -1, PrivateKey: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	u, err := n.AddUser(User{Phone: "+1 (555) 0001", Username: "@xenia_5"})
	if err != nil || u.ID == 0 || u.AccessHash == 0 || u.Phone != "15550001" || u.Username != "xenia_5" {
		t.Fatalf("%+v %v", u, err)
	}
	for _, bad := range []User{{}, {Phone: "15550001"}, {Phone: "2", Username: "XENIA_5"}, {Phone: "3", ID: u.ID},
		{Phone: "4", Username: "bob"}, {Phone: "5", Username: "1abcde"}, {Phone: "6", Username: "abc__de"},
		{Phone: "7", Username: "abcde_"}, {Phone: "8", Username: "abc-de"}, {Phone: "9", Username: strings.Repeat("a", 33)}} {
		if _, err := n.AddUser(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := New(Options{Addr: "localhost", PrivateKey: testKey(t)}); err == nil {
		t.Error("bad address accepted")
	}
}

// TestAddUserVanished: a user added with Vanished starts vanished (the
// users file's `vanished: true`, `tgsip emulator -vanish`).
func TestAddUserVanished(t *testing.T) {
	n, err := New(Options{Reflectors: -1, PrivateKey: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	u, err := n.AddUser(User{Phone: "+15550009", Vanished: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := n.AddUser(User{Phone: "+15550010"})
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.faults.vanishedLocked(u.ID) || n.faults.vanishedLocked(v.ID) {
		t.Error("Vanished not applied to exactly the vanished user")
	}
}
