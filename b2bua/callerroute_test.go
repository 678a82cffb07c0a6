package b2bua

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var (
	alice   = Caller{ID: 1001, Username: "alice_tg", Phone: "4915112345678", FirstName: "Alice", LastName: "Liddell"}
	bob     = Caller{ID: 1002, Username: "BobSmith", FirstName: "Bob"}
	mallory = Caller{ID: 666, Phone: "79001234567", FirstName: "Mal"}
	hidden  = Caller{ID: 1003}
)

func TestTelegramRouting(t *testing.T) {
	cfg := TelegramRouting{
		Target: "sip:{phone|id}@pbx.example.com",
		Block:  []string{"id:666"},
		Rules: []TelegramRule{
			{Name: "vip", Callers: []string{"@bobsmith"}, Target: "sip:vip-{username}@pbx.example.com;transport=tcp"},
			{Name: "sales-only-known", Accounts: []string{"sales"}, Callers: []string{"+4915112345678"}, Target: "sips:sales@pbx.example.com"},
			{Name: "sales-rest", Accounts: []string{"sales"}, Reject: true},
			{Name: "support", Accounts: []string{"support"}},
		},
	}
	r, err := NewTelegramRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		account string
		caller  Caller
		target  string
		rule    string
		err     error
	}{
		{"main", alice, "sip:+4915112345678@pbx.example.com", "", nil},
		{"main", hidden, "sip:1003@pbx.example.com", "", nil},
		{"main", bob, "sip:vip-BobSmith@pbx.example.com;transport=tcp", "vip", nil},
		{"main", mallory, "", "", ErrCallerRejected},
		{"sales", alice, "sips:sales@pbx.example.com", "sales-only-known", nil},
		{"sales", hidden, "", "sales-rest", ErrCallerRejected},
		{"sales", bob, "sip:vip-BobSmith@pbx.example.com;transport=tcp", "vip", nil},
		{"support", hidden, "sip:1003@pbx.example.com", "support", nil},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/%d", c.account, c.caller.ID)
		got, err := r.Route(c.account, c.caller)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: %+v, %v; want %v", name, got, err, c.err)
			}
			if got.Rule != c.rule {
				t.Errorf("%s: rule %q, want %q", name, got.Rule, c.rule)
			}
			continue
		}
		if err != nil || got.Target != c.target || got.Rule != c.rule {
			t.Errorf("%s: %q rule %q, %v; want %q rule %q", name, got.Target, got.Rule, err, c.target, c.rule)
		}
	}
}

func TestTelegramRoutingAllowList(t *testing.T) {
	r, err := NewTelegramRouter(TelegramRouting{Target: "sip:{username}@pbx", Allow: []string{"@alice_tg", "id:1003"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Route("a", alice); err != nil || got.Target != "sip:alice_tg@pbx" {
		t.Errorf("allowed alice: %+v, %v", got, err)
	}
	if _, err := r.Route("a", bob); !errors.Is(err, ErrCallerRejected) {
		t.Errorf("bob not on the allow list: %v", err)
	}
	// Allowed, but the template needs a username the caller lacks.
	if _, err := r.Route("a", hidden); !errors.Is(err, ErrNoRoute) || !strings.Contains(err.Error(), "no username") {
		t.Errorf("caller without username: %v", err)
	}
	// No default target: nothing is routed.
	r, err = NewTelegramRouter(TelegramRouting{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Route("a", alice); !errors.Is(err, ErrNoRoute) {
		t.Errorf("no target: %v", err)
	}
	if SIPEndFor(ErrCallerRejected).Outcome != OutcomeDeclined || DiscardFor(ErrCallerRejected).String() != "busy" {
		t.Error("a rejected caller is not declined busy on Telegram")
	}
}

// TestTelegramRoutingHostileCaller: names and handles from Telegram never
// put anything but their own value into the URI and headers.
func TestTelegramRoutingHostileCaller(t *testing.T) {
	r, err := NewTelegramRouter(TelegramRouting{Target: "sip:{username|phone|id}@pbx;x={account}"})
	if err != nil {
		t.Fatal(err)
	}
	evil := Caller{
		ID:        42,
		Username:  "a@b>\r\nVia: x",
		Phone:     "123\r\nX-Injected: 1",
		FirstName: "Eve \"the\" \\ \r\nX-Injected: 1\u202e",
		LastName:  "\x00\x7f  Hacker\u200b",
	}
	got, err := r.Route("acc ount", evil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Target != "sip:42@pbx;x=acc%20ount" {
		t.Errorf("target %q", got.Target)
	}
	id := got.Identity
	if id.DisplayName != "Eve the X-Injected: 1 Hacker" {
		t.Errorf("display name %q", id.DisplayName)
	}
	if id.User != "42" {
		t.Errorf("user %q", id.User)
	}
	if len(id.Headers) != 1 || id.Headers[0] != (Header{"X-Telegram-User-Id", "42"}) {
		t.Errorf("headers %v", id.Headers)
	}
}

func TestCallerIdentity(t *testing.T) {
	id := alice.Identity()
	if id.DisplayName != "Alice Liddell" || id.User != "+4915112345678" {
		t.Errorf("alice: %+v", id)
	}
	want := []Header{
		{"X-Telegram-User-Id", "1001"},
		{"X-Telegram-Username", "alice_tg"},
		{"X-Telegram-Phone", "+4915112345678"},
	}
	if fmt.Sprint(id.Headers) != fmt.Sprint(want) {
		t.Errorf("headers %v, want %v", id.Headers, want)
	}
	long := Caller{ID: 5, FirstName: strings.Repeat("Я", 100), LastName: "\xff\xfe"}
	if got := long.Identity().DisplayName; got != strings.Repeat("Я", maxDisplayName) {
		t.Errorf("long name: %q (%d runes)", got, len([]rune(got)))
	}
	if got := (Caller{ID: 5, FirstName: "   "}).Identity().DisplayName; got != "" {
		t.Errorf("blank name: %q", got)
	}
}

func TestTelegramRoutingValidate(t *testing.T) {
	bad := []struct {
		cfg  TelegramRouting
		want string
	}{
		{TelegramRouting{Target: "pbx.example.com"}, "routing.telegram_to_sip.target"},
		{TelegramRouting{Target: "sip:{name}@pbx"}, "unknown placeholder {name}"},
		{TelegramRouting{Target: "sip:{id@pbx"}, "never closed"},
		{TelegramRouting{Target: "sip:id}@pbx"}, "closing brace"},
		{TelegramRouting{Target: "sip:{id}@"}, "no host"},
		{TelegramRouting{Target: "sip:{id}@;transport=tcp"}, "no host"},
		{TelegramRouting{Target: "sip:a b@pbx"}, "no spaces"},
		{TelegramRouting{Target: "sip:x@pbx", Block: []string{"alice"}}, "routing.telegram_to_sip.block[0]"},
		{TelegramRouting{Target: "sip:x@pbx", Allow: []string{"+0"}}, "routing.telegram_to_sip.allow[0]"},
		{TelegramRouting{Rules: []TelegramRule{{Name: "r", Callers: []string{"@ok_name", "bad"}, Reject: true}}}, "rules[0] (r).callers[1]"},
		{TelegramRouting{Rules: []TelegramRule{{Reject: true, Target: "sip:x@pbx"}}}, "rejects has no target"},
		{TelegramRouting{Rules: []TelegramRule{{Accounts: []string{"a"}}}}, "set a target here"},
		{TelegramRouting{Rules: []TelegramRule{{Target: "http://x"}}}, "rules[0].target"},
	}
	for _, b := range bad {
		err := b.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want a message containing %q", b.cfg, err, b.want)
		}
	}
	good := TelegramRouting{Target: "sip:{phone | id}@10.0.0.1:5060", Rules: []TelegramRule{{Accounts: []string{"a"}, Reject: true}}}
	if err := good.Validate(); err != nil {
		t.Error(err)
	}
}

func FuzzCallerIdentity(f *testing.F) {
	f.Add(int64(1), "alice_tg", "4915112345678", "Alice", "Liddell")
	f.Add(int64(-1), "\r\n", "+1", "\"\\", "\u202e")
	f.Fuzz(func(t *testing.T, id int64, username, phone, first, last string) {
		c := Caller{ID: id, Username: username, Phone: phone, FirstName: first, LastName: last}
		ident := c.Identity()
		for _, s := range append([]string{ident.DisplayName, ident.User}, headerValues(ident.Headers)...) {
			if strings.ContainsAny(s, "\r\n\x00\"\\") {
				t.Fatalf("unsafe value %q from %+v", s, c)
			}
		}
		r, err := NewTelegramRouter(TelegramRouting{Target: "sip:{username|phone|id}@pbx"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.Route("a", c); err == nil && strings.ContainsAny(got.Target, " \r\n<>\"") {
			t.Fatalf("unsafe target %q from %+v", got.Target, c)
		}
	})
}

func headerValues(hs []Header) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Value
	}
	return out
}
