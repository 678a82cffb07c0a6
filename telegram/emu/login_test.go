package emu

import (
	"errors"
	"math/big"
	"testing"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

func TestLoginWithCode(t *testing.T) {
	alice := loggedIn(t, "alice")
	if alice.self.ID != user(t, "alice").ID || !alice.self.Self || alice.self.Username != "alice" {
		t.Errorf("self %+v", alice.self)
	}
}

// TestLoginErrors walks one fresh client through the failure cases and ends
// signed in with 2FA.
func TestLoginErrors(t *testing.T) {
	n := shnet(t)
	c, err := startClient(n.ClientOptions(), "anon")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx := ctxT(t)
	a := c.client.Auth()

	if _, err := c.api.UsersGetFullUser(ctx, &tg.InputUserSelf{}); !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
		t.Errorf("before login: %v", err)
	}

	sent, err := a.SendCode(ctx, "+10000000001", auth.SendCodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash := sent.(*tg.AuthSentCode).PhoneCodeHash
	if _, err := a.SignIn(ctx, "+10000000001", "99999", hash); !tgerr.Is(err, "PHONE_CODE_INVALID") {
		t.Errorf("wrong code: %v", err)
	}
	if _, err := a.SignIn(ctx, "+10000000001", "12345", "stale"); !tgerr.Is(err, "PHONE_CODE_EXPIRED") {
		t.Errorf("wrong hash: %v", err)
	}

	sent, err = a.SendCode(ctx, "+19999999999", auth.SendCodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SignIn(ctx, "+19999999999", "12345", sent.(*tg.AuthSentCode).PhoneCodeHash); !tgerr.Is(err, "PHONE_NUMBER_UNOCCUPIED") {
		t.Errorf("unknown phone: %v", err)
	}

	carol := user(t, "carol")
	// The raw error for a wrong SRP answer.
	sent, err = a.SendCode(ctx, carol.Phone, auth.SendCodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SignIn(ctx, carol.Phone, "12345", sent.(*tg.AuthSentCode).PhoneCodeHash); !errors.Is(err, auth.ErrPasswordAuthNeeded) {
		t.Fatalf("2FA user sign in: %v", err)
	}
	pw, err := c.api.AccountGetPassword(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !pw.HasPassword || len(pw.SRPB) != 256 {
		t.Errorf("account.password %+v", pw)
	}
	if _, err := c.api.AuthCheckPassword(ctx, &tg.InputCheckPasswordSRP{SRPID: pw.SRPID, A: []byte{2}, M1: make([]byte, 32)}); !tgerr.Is(err, "PASSWORD_HASH_INVALID") {
		t.Errorf("garbage SRP answer: %v", err)
	}

	// The SRP client math is slow under -race on a busy machine.
	ctx = ctxSlow(t)
	if err := n.Login(ctx, c.client, carol.Phone, "wrong"); !errors.Is(err, auth.ErrPasswordInvalid) {
		t.Errorf("bad 2FA password: %v", err)
	}
	if err := n.Login(ctx, c.client, carol.Phone, carol.Password); err != nil {
		t.Fatalf("2FA login: %v", err)
	}
	self, err := c.client.Self(ctx)
	if err != nil || self.ID != carol.ID {
		t.Fatalf("self after 2FA: %v %v", self, err)
	}
}

func TestResolve(t *testing.T) {
	alice := loggedIn(t, "alice")
	ctx := ctxT(t)
	bob := user(t, "bobby")

	byName, err := alice.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "Bobby"})
	if err != nil {
		t.Fatal(err)
	}
	byPhone, err := alice.api.ContactsResolvePhone(ctx, "+1 000 000 0002")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*tg.ContactsResolvedPeer{byName, byPhone} {
		if p, ok := r.Peer.(*tg.PeerUser); !ok || p.UserID != bob.ID || len(r.Users) != 1 {
			t.Fatalf("resolved %+v", r)
		}
		if u := r.Users[0].(*tg.User); u.AccessHash != bob.AccessHash || u.FirstName != "Bob" {
			t.Errorf("user %+v", u)
		}
	}
	if _, err := alice.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "nosuch"}); !tgerr.Is(err, "USERNAME_NOT_OCCUPIED") {
		t.Errorf("unknown username: %v", err)
	}
	if _, err := alice.api.ContactsResolvePhone(ctx, "+1999"); !tgerr.Is(err, "PHONE_NOT_OCCUPIED") {
		t.Errorf("unknown phone: %v", err)
	}

	users, err := alice.api.UsersGetUsers(ctx, []tg.InputUserClass{
		&tg.InputUserSelf{},
		&tg.InputUser{UserID: bob.ID, AccessHash: bob.AccessHash},
		&tg.InputUser{UserID: bob.ID, AccessHash: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || users[0].(*tg.User).ID != alice.self.ID || users[1].(*tg.User).ID != bob.ID {
		t.Errorf("getUsers %+v", users)
	}
	if _, ok := users[2].(*tg.UserEmpty); !ok {
		t.Errorf("wrong access hash gave %T", users[2])
	}
	full, err := alice.api.UsersGetFullUser(ctx, &tg.InputUser{UserID: user(t, "david").ID, AccessHash: user(t, "david").AccessHash})
	if err != nil {
		t.Fatal(err)
	}
	if !full.FullUser.PhoneCallsPrivate || !full.FullUser.PhoneCallsAvailable {
		t.Errorf("dave's calls are contacts-only: %+v", full.FullUser)
	}

	// Import by phone makes a contact.
	imp, err := alice.api.ContactsImportContacts(ctx, []tg.InputPhoneContact{{ClientID: 5, Phone: "+10000000007", FirstName: "G"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(imp.Imported) != 1 || imp.Imported[0].UserID != user(t, "ghost").ID || imp.Imported[0].ClientID != 5 {
		t.Errorf("imported %+v", imp)
	}
	cs, err := alice.api.ContactsGetContacts(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	list := cs.(*tg.ContactsContacts)
	if len(list.Contacts) != 1 || list.Contacts[0].UserID != user(t, "ghost").ID || !list.Users[0].(*tg.User).Contact {
		t.Errorf("contacts %+v", list)
	}
}

func TestConfigAndDH(t *testing.T) {
	alice := loggedIn(t, "alice")
	ctx := ctxT(t)
	cfg, err := alice.api.HelpGetConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CallReceiveTimeoutMs != 1500 || cfg.CallRingTimeoutMs != 1500 || cfg.CallConnectTimeoutMs != 10000 || cfg.CallPacketTimeoutMs != 10000 {
		t.Errorf("call timeouts %d %d %d %d", cfg.CallReceiveTimeoutMs, cfg.CallRingTimeoutMs, cfg.CallConnectTimeoutMs, cfg.CallPacketTimeoutMs)
	}
	if cfg.ThisDC != DC || len(cfg.DCOptions) != 1 || cfg.DCOptions[0].IPAddress != "127.0.0.1" {
		t.Errorf("dc options %+v", cfg.DCOptions)
	}

	dh, err := alice.api.MessagesGetDhConfig(ctx, &tg.MessagesGetDhConfigRequest{RandomLength: 256})
	if err != nil {
		t.Fatal(err)
	}
	full, ok := dh.(*tg.MessagesDhConfig)
	if !ok {
		t.Fatalf("getDhConfig %T", dh)
	}
	p := new(big.Int).SetBytes(full.P)
	if full.G != 3 || p.BitLen() != 2048 || new(big.Int).Mod(p, big.NewInt(3)).Int64() != 2 || len(full.Random) != 256 {
		t.Errorf("dh config g=%d bits=%d random=%d", full.G, p.BitLen(), len(full.Random))
	}
	if !p.ProbablyPrime(20) {
		t.Error("p is not prime")
	}
	same, err := alice.api.MessagesGetDhConfig(ctx, &tg.MessagesGetDhConfigRequest{Version: full.Version, RandomLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	if nm, ok := same.(*tg.MessagesDhConfigNotModified); !ok || len(nm.Random) != 32 {
		t.Errorf("same version gave %T", same)
	}
	cc, err := alice.api.PhoneGetCallConfig(ctx)
	if err != nil || cc.Data != "{}" {
		t.Errorf("getCallConfig %v %v", cc, err)
	}
}
