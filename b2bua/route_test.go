package b2bua

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePeer(t *testing.T) {
	cases := []struct {
		in   string
		kind PeerKind
		val  string
		ok   bool
	}{
		{"+4930123456", PeerPhone, "+4930123456", true},
		{"+0123456", 0, "", false},
		{"+12", 0, "", false},
		{"+1234567890123456", 0, "", false},
		{"+49 30", 0, "", false},
		{"@durov", PeerUsername, "durov", true},
		{"@Echo_Bot", PeerUsername, "Echo_Bot", true},
		{"@abc", 0, "", false},
		{"@1abc", 0, "", false},
		{"@abcd_", 0, "", false},
		{"@abc-d", 0, "", false},
		{"@" + strings.Repeat("a", 33), 0, "", false},
		{"id:777000", PeerID, "777000", true},
		{"id:0", 0, "", false},
		{"id:-5", 0, "", false},
		{"id:x", 0, "", false},
		{"4930", 0, "", false},
		{"", 0, "", false},
	}
	for _, c := range cases {
		p, err := ParsePeer(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParsePeer(%q) error %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if !c.ok {
			if !errors.Is(err, ErrInvalidNumber) {
				t.Errorf("ParsePeer(%q) error %v does not wrap ErrInvalidNumber", c.in, err)
			}
			continue
		}
		if p.Kind != c.kind || p.Value != c.val {
			t.Errorf("ParsePeer(%q) = %v %q, want %v %q", c.in, p.Kind, p.Value, c.kind, c.val)
		}
		if back, err := ParsePeer(p.String()); err != nil || back != p {
			t.Errorf("ParsePeer(%q).String() = %q does not read back", c.in, p.String())
		}
	}
	if id, ok := (Peer{Kind: PeerID, Value: "42"}).ID(); !ok || id != 42 {
		t.Error("Peer.ID")
	}
	if _, ok := (Peer{Kind: PeerPhone, Value: "+4930123"}).ID(); ok {
		t.Error("Peer.ID on a phone")
	}
}

func TestNormalize(t *testing.T) {
	de := NumberPlan{CountryCode: "49", NationalPrefix: "0"}
	us := NumberPlan{CountryCode: "1", NationalPrefix: "1", InternationalPrefix: "011"}
	none := NumberPlan{}
	cases := []struct {
		plan NumberPlan
		in   string
		want string // "" = error
	}{
		{de, "+49 30 1234567", "+49301234567"},
		{de, "0049301234567", "+49301234567"},
		{de, "030 / 123 45-67", "+49301234567"},
		{de, "(030) 123.45.67", "+49301234567"},
		{de, "49301234567", "+49301234567"},
		{de, "0%2030%20123", "+4930123"},
		{de, "0%zz", ""},
		{de, "+49-30-123;ext=5", ""},
		{de, "030abc", ""},
		{de, "++4930123", ""},
		{de, "49+30123", ""},
		{de, "", ""},
		{de, "00", ""},
		{de, "0", ""},
		{de, "+0301234", ""},
		{de, "1234567890123456", ""},
		{us, "1 (212) 555-0100", "+12125550100"},
		{us, "011 44 20 7946 0000", "+442079460000"},
		{us, "+1-212-555-0100", "+12125550100"},
		{none, "0301234567", ""}, // national number and no country: leading 0 is no country code
		{none, "00 7 495 1234567", "+74951234567"},
		{none, "4930123", "+4930123"},
	}
	for _, c := range cases {
		got, err := c.plan.Normalize(c.in)
		if c.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidNumber) {
				t.Errorf("%+v Normalize(%q) = %q, %v; want an ErrInvalidNumber", c.plan, c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v Normalize(%q) = %q, %v; want %q", c.plan, c.in, got, err, c.want)
		}
	}
}

func TestNumberPlanValidate(t *testing.T) {
	bad := []struct {
		plan NumberPlan
		want string
	}{
		{NumberPlan{CountryCode: "+49"}, "numbers.country_code"},
		{NumberPlan{CountryCode: "049"}, "numbers.country_code"},
		{NumberPlan{CountryCode: "4901"}, "numbers.country_code"},
		{NumberPlan{NationalPrefix: "0"}, "needs numbers.country_code"},
		{NumberPlan{CountryCode: "49", NationalPrefix: "O"}, "numbers.national_prefix"},
		{NumberPlan{InternationalPrefix: "+"}, "numbers.international_prefix"},
	}
	for _, b := range bad {
		err := b.plan.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want a message about %s", b.plan, err, b.want)
		}
	}
	if err := (NumberPlan{CountryCode: "49", NationalPrefix: "0", InternationalPrefix: "00"}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestSIPRouting(t *testing.T) {
	cfg := SIPRouting{
		Numbers: NumberPlan{CountryCode: "49", NationalPrefix: "0"},
		Aliases: map[string]string{"Echo": "@echo_bot", "reception": "+4930123456", "boss": "id:1234567"},
		Rules: []SIPRule{
			{Name: "aliases", Match: "(?i)echo|reception|boss"},
			{Name: "tg-user", Prefix: "*7", Rewrite: "$1", As: AsUsername, Accounts: []string{"bots"}},
			{Name: "tg-id", Match: `\*8(?P<id>\d+)`, Rewrite: "${id}", As: AsID},
			{Name: "ext", Match: `1\d\d`, Rewrite: "+4930555$0", Accounts: []string{"office"}, OnlyAccounts: true},
			{Name: "outside", Prefix: "9", Rewrite: "$1", As: AsPhone},
			{Name: "e164", Match: `\+\d+`},
		},
	}
	r, err := NewSIPRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user  string
		peer  string
		rule  string
		prefs LeasePrefs
		err   error
	}{
		{"echo", "@echo_bot", "aliases", LeasePrefs{}, nil},
		{"ECHO", "@echo_bot", "aliases", LeasePrefs{}, nil},
		{"reception", "+4930123456", "aliases", LeasePrefs{}, nil},
		{"boss", "id:1234567", "aliases", LeasePrefs{}, nil},
		{"*7durov", "@durov", "tg-user", LeasePrefs{Accounts: []string{"bots"}}, nil},
		{"*7du", "", "tg-user", LeasePrefs{}, ErrInvalidNumber},
		{"*8777000", "id:777000", "tg-id", LeasePrefs{}, nil},
		{"123", "+4930555123", "ext", LeasePrefs{Accounts: []string{"office"}, Only: true}, nil},
		{"1234", "", "", LeasePrefs{}, ErrNoRoute},
		{"9030-1234567", "+49301234567", "outside", LeasePrefs{}, nil},
		{"900441234567", "+441234567", "outside", LeasePrefs{}, nil},
		{"9abc", "", "outside", LeasePrefs{}, ErrInvalidNumber},
		{"+4930999", "+4930999", "e164", LeasePrefs{}, nil},
		{"+4930999x", "", "", LeasePrefs{}, ErrNoRoute},
		{"", "", "", LeasePrefs{}, ErrNoRoute},
		{strings.Repeat("9", 300), "", "", LeasePrefs{}, ErrInvalidNumber},
	}
	for _, c := range cases {
		got, err := r.Route(Called{RequestUser: c.user})
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Route(%q) = %v, %v; want %v", c.user, got.Peer, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Route(%q): %v", c.user, err)
			continue
		}
		if got.Peer.String() != c.peer || got.Rule != c.rule || !equalPrefs(got.Prefs, c.prefs) {
			t.Errorf("Route(%q) = %v rule %q prefs %+v; want %s rule %q prefs %+v", c.user, got.Peer, got.Rule, got.Prefs, c.peer, c.rule, c.prefs)
		}
	}
}

func equalPrefs(a, b LeasePrefs) bool {
	return strings.Join(a.Accounts, ",") == strings.Join(b.Accounts, ",") && a.Only == b.Only
}

func TestSIPRoutingWithoutRules(t *testing.T) {
	r, err := NewSIPRouter(SIPRouting{Numbers: NumberPlan{CountryCode: "44", NationalPrefix: "0"}, Aliases: map[string]string{"tone": "@tone_user"}})
	if err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]string{
		"tone":           "@tone_user",
		"@someone":       "@someone",
		"someone":        "@someone",
		"id:99":          "id:99",
		"020 7946 0000":  "+442079460000",
		"+1 212 5550100": "+12125550100",
		"(020)79460000":  "+442079460000",
	} {
		got, err := r.Route(Called{RequestUser: user})
		if err != nil || got.Peer.String() != want || got.Rule != "" {
			t.Errorf("Route(%q) = %v rule %q, %v; want %s", user, got.Peer, got.Rule, err, want)
		}
	}
	for _, user := range []string{"a b", "x", "sip:foo", "@@x"} {
		if got, err := r.Route(Called{RequestUser: user}); err == nil {
			t.Errorf("Route(%q) = %v, want an error", user, got.Peer)
		}
	}
}

func TestSIPRoutingSources(t *testing.T) {
	called := Called{
		RequestUser: "+4911111",
		ToUser:      "+4922222",
		Header: func(name string) string {
			if name == "X-Telegram-Peer" {
				return "@from_header"
			}
			return ""
		},
	}
	for _, c := range []struct {
		cfg  SIPRouting
		want string
	}{
		{SIPRouting{}, "+4911111"},
		{SIPRouting{Source: SourceRequestURI}, "+4911111"},
		{SIPRouting{Source: SourceTo}, "+4922222"},
		{SIPRouting{Source: SourceHeader, Header: "x-telegram-peer"}, "@from_header"},
	} {
		r, err := NewSIPRouter(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Route(called)
		if err != nil || got.Peer.String() != c.want {
			t.Errorf("source %q: %v, %v; want %s", c.cfg.Source, got.Peer, err, c.want)
		}
	}
	r, _ := NewSIPRouter(SIPRouting{Source: SourceHeader, Header: "X-Telegram-Peer"})
	if _, err := r.Route(Called{RequestUser: "+4911111"}); !errors.Is(err, ErrNoRoute) || !strings.Contains(err.Error(), "X-Telegram-Peer header") {
		t.Errorf("missing header: %v", err)
	}
}

func TestSIPRoutingValidate(t *testing.T) {
	bad := []struct {
		cfg  SIPRouting
		want string
	}{
		{SIPRouting{Source: "from"}, "routing.sip_to_telegram.source"},
		{SIPRouting{Source: SourceHeader}, "routing.sip_to_telegram.header"},
		{SIPRouting{Source: SourceHeader, Header: "X-Bad: 1"}, "routing.sip_to_telegram.header"},
		{SIPRouting{Numbers: NumberPlan{CountryCode: "x"}}, "routing.sip_to_telegram.numbers.country_code"},
		{SIPRouting{Aliases: map[string]string{"a": "durov"}}, `aliases["a"]`},
		{SIPRouting{Aliases: map[string]string{"": "@durov"}}, "empty name"},
		{SIPRouting{Aliases: map[string]string{"A": "@durov", "a": "@other"}}, "listed twice"},
		{SIPRouting{Rules: []SIPRule{{Match: "(", Name: "broken"}}}, "rules[0] (broken): match"},
		{SIPRouting{Rules: []SIPRule{{}, {Match: "1", Prefix: "1"}}}, "rules[1]: set match or prefix"},
		{SIPRouting{Rules: []SIPRule{{As: "email"}}}, "rules[0]: as"},
		{SIPRouting{Rules: []SIPRule{{OnlyAccounts: true}}}, "only_accounts needs"},
	}
	for _, b := range bad {
		err := b.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want a message containing %q", b.cfg, err, b.want)
		}
	}
}

// FuzzNormalize: any input gives an error or a valid +E.164 number, and a
// normalized number normalizes to itself.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+49 30 1234567", "0049301234567", "(030) 123-45.67", "0%2030", "011 44", "", "++1", "\x00", "9️⃣"} {
		f.Add(s, "49", "0", "")
	}
	f.Add("1 212 555 0100", "1", "1", "011")
	f.Fuzz(func(t *testing.T, s, cc, np, ip string) {
		plan := NumberPlan{CountryCode: cc, NationalPrefix: np, InternationalPrefix: ip}
		if plan.Validate() != nil {
			return
		}
		got, err := plan.Normalize(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidNumber) {
				t.Fatalf("Normalize(%q) error %v does not wrap ErrInvalidNumber", s, err)
			}
			return
		}
		if !isE164(got) {
			t.Fatalf("Normalize(%q) = %q, not +E.164", s, got)
		}
		again, err := plan.Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", s, got, got, again, err)
		}
	})
}

// FuzzSIPRoute: whatever the PBX sends, routing answers a peer that parses
// back, or an error the mapping turns into 404/484.
func FuzzSIPRoute(f *testing.F) {
	r, err := NewSIPRouter(SIPRouting{
		Numbers: NumberPlan{CountryCode: "49", NationalPrefix: "0"},
		Aliases: map[string]string{"echo": "@echo_bot"},
		Rules: []SIPRule{
			{Prefix: "*7", Rewrite: "$1", As: AsUsername},
			{Prefix: "*8", Rewrite: "$1", As: AsID},
			{Match: `.*`},
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"echo", "*7durov", "*8123", "030 1234", "@x", "id:1", "%", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, user string) {
		got, err := r.Route(Called{RequestUser: user})
		if err != nil {
			if st := SIPEndFor(err).Status; st != 404 && st != 484 {
				t.Fatalf("Route(%q) error %v maps to %d", user, err, st)
			}
			return
		}
		if back, err := ParsePeer(got.Peer.String()); err != nil || back != got.Peer {
			t.Fatalf("Route(%q) = %+v does not parse back: %v", user, got.Peer, err)
		}
	})
}
