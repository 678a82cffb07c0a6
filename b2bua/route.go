package b2bua

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"strings"
)

// SIP → Telegram routing: which Telegram user a call from the PBX is for.

// Where the called party is read from in an INVITE.
const (
	SourceRequestURI = "request_uri" // the Request-URI user (default)
	SourceTo         = "to"          // the To header's URI user
	SourceHeader     = "header"      // a configured header, e.g. X-Telegram-Peer
)

// How a rule's result is read.
const (
	AsAuto     = "auto"     // "+…"/digits: phone; "@…": username; "id:…": id
	AsPhone    = "phone"    // a number, normalized by the number plan
	AsUsername = "username" // a username, '@' optional
	AsID       = "id"       // a numeric Telegram user id
)

// SIPRouting is the `routing.sip_to_telegram` configuration.
type SIPRouting struct {
	// Source is where the called party is read: request_uri (default), to
	// or header.
	Source string `yaml:"source"`
	// Header is the header read when Source is header.
	Header string `yaml:"header"`
	// Numbers normalizes dialed numbers to E.164.
	Numbers NumberPlan `yaml:"numbers"`
	// Aliases name Telegram peers: a dialed (or rewritten) string equal to
	// a key, case-insensitively, calls the peer written as the value
	// ("+E.164", "@username" or "id:NUMBER").
	Aliases map[string]string `yaml:"aliases"`
	// Rules are tried in order; the first that matches routes the call. With
	// no rules every called party is routed as dialed; with rules, a called
	// party no rule matches is refused with 404.
	Rules []SIPRule `yaml:"rules"`
}

// SIPRule is one routing rule.
type SIPRule struct {
	// Name appears in logs.
	Name string `yaml:"name"`
	// Match is a regular expression (Go RE2 syntax) the whole called party
	// must match. At most one of Match and Prefix; neither matches all.
	Match string `yaml:"match"`
	// Prefix is a literal prefix the called party must start with; $1 in
	// Rewrite is what follows it.
	Prefix string `yaml:"prefix"`
	// Rewrite builds the target from the match: $0 is the whole called
	// party, $1… and ${name} the groups. Empty: the called party as is.
	Rewrite string `yaml:"rewrite"`
	// As says how to read the target: auto (default), phone, username or id.
	As string `yaml:"as"`
	// Accounts are the Telegram accounts to place the call from, in order
	// of preference; empty: any.
	Accounts []string `yaml:"accounts"`
	// OnlyAccounts restricts the call to Accounts instead of preferring them.
	OnlyAccounts bool `yaml:"only_accounts"`
}

// Validate checks the configuration; messages name the setting.
func (c SIPRouting) Validate() error {
	_, err := NewSIPRouter(c)
	return err
}

// SIPRouter routes calls from the PBX. It is immutable and safe for
// concurrent use.
type SIPRouter struct {
	source  string
	header  string
	numbers NumberPlan
	aliases map[string]Peer
	rules   []compiledRule
}

type compiledRule struct {
	SIPRule
	re *regexp.Regexp
}

// NewSIPRouter compiles a configuration.
func NewSIPRouter(c SIPRouting) (*SIPRouter, error) {
	r := &SIPRouter{source: c.Source, numbers: c.Numbers, aliases: make(map[string]Peer, len(c.Aliases))}
	switch c.Source {
	case "":
		r.source = SourceRequestURI
	case SourceRequestURI, SourceTo:
	case SourceHeader:
		if c.Header == "" || strings.ContainsAny(c.Header, " :\r\n\t") {
			return nil, fmt.Errorf("routing.sip_to_telegram.header %q: name the header to read (e.g. X-Telegram-Peer) when source is header", c.Header)
		}
		r.header = textproto.CanonicalMIMEHeaderKey(c.Header)
	default:
		return nil, fmt.Errorf("routing.sip_to_telegram.source %q: want request_uri, to or header", c.Source)
	}
	if err := c.Numbers.Validate(); err != nil {
		return nil, fmt.Errorf("routing.sip_to_telegram.%w", err)
	}
	for k, v := range c.Aliases {
		if k == "" {
			return nil, errors.New("routing.sip_to_telegram.aliases: an alias has an empty name")
		}
		p, err := ParsePeer(v)
		if err != nil {
			return nil, fmt.Errorf("routing.sip_to_telegram.aliases[%q]: %w", k, err)
		}
		lk := strings.ToLower(k)
		if _, dup := r.aliases[lk]; dup {
			return nil, fmt.Errorf("routing.sip_to_telegram.aliases: %q is listed twice (names are case-insensitive)", k)
		}
		r.aliases[lk] = p
	}
	for i, rule := range c.Rules {
		where := fmt.Sprintf("routing.sip_to_telegram.rules[%d]", i)
		if rule.Name != "" {
			where += fmt.Sprintf(" (%s)", rule.Name)
		}
		cr := compiledRule{SIPRule: rule}
		switch {
		case rule.Match != "" && rule.Prefix != "":
			return nil, fmt.Errorf("%s: set match or prefix, not both", where)
		case rule.Match != "":
			re, err := regexp.Compile("^(?:" + rule.Match + ")$")
			if err != nil {
				return nil, fmt.Errorf("%s: match %q is not a valid regular expression: %w", where, rule.Match, err)
			}
			cr.re = re
		default:
			// Prefix "" matches everything.
			cr.re = regexp.MustCompile("^" + regexp.QuoteMeta(rule.Prefix) + "(.*)$")
		}
		switch rule.As {
		case "":
			cr.As = AsAuto
		case AsAuto, AsPhone, AsUsername, AsID:
		default:
			return nil, fmt.Errorf("%s: as %q: want auto, phone, username or id", where, rule.As)
		}
		if rule.OnlyAccounts && len(rule.Accounts) == 0 {
			return nil, fmt.Errorf("%s: only_accounts needs a list of accounts", where)
		}
		r.rules = append(r.rules, cr)
	}
	return r, nil
}

// Called is what the router reads from an INVITE: the user parts of the
// Request-URI and To, and a header lookup.
type Called struct {
	RequestUser string
	ToUser      string
	// Header returns a header's value ("" when absent); may be nil.
	Header func(name string) string
}

// SIPRoute is where a call from the PBX goes.
type SIPRoute struct {
	// Peer is the Telegram user to call.
	Peer Peer
	// Rule names the rule that matched ("" without rules, "#N" for an
	// unnamed rule).
	Rule string
	// Prefs are the account preferences for Pool.Lease.
	Prefs LeasePrefs
}

// maxCalledLen bounds what is read from the network.
const maxCalledLen = 256

// Route finds the Telegram peer for a call. Errors wrap ErrNoRoute (404)
// or ErrInvalidNumber (484).
func (r *SIPRouter) Route(c Called) (SIPRoute, error) {
	var in string
	switch r.source {
	case SourceTo:
		in = c.ToUser
	case SourceHeader:
		if c.Header != nil {
			in = c.Header(r.header)
		}
	default:
		in = c.RequestUser
	}
	in = strings.TrimSpace(in)
	if in == "" {
		return SIPRoute{}, fmt.Errorf("%w: no called party in the %s", ErrNoRoute, r.sourceName())
	}
	if len(in) > maxCalledLen {
		return SIPRoute{}, fmt.Errorf("%w: called party longer than %d bytes", ErrInvalidNumber, maxCalledLen)
	}
	if len(r.rules) == 0 {
		p, err := r.peer(in, AsAuto)
		return SIPRoute{Peer: p}, err
	}
	for i, rule := range r.rules {
		m := rule.re.FindStringSubmatchIndex(in)
		if m == nil {
			continue
		}
		target := in
		if rule.Rewrite != "" {
			target = string(rule.re.ExpandString(nil, rule.Rewrite, in, m))
		}
		name := rule.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		p, err := r.peer(target, rule.As)
		if err != nil {
			return SIPRoute{Rule: name}, fmt.Errorf("rule %s: %w", name, err)
		}
		return SIPRoute{Peer: p, Rule: name, Prefs: LeasePrefs{Accounts: rule.Accounts, Only: rule.OnlyAccounts}}, nil
	}
	return SIPRoute{}, fmt.Errorf("%w: no rule matches %q", ErrNoRoute, in)
}

func (r *SIPRouter) sourceName() string {
	switch r.source {
	case SourceTo:
		return "To header"
	case SourceHeader:
		return r.header + " header"
	}
	return "Request-URI"
}

// peer reads a target: an alias first, then as the rule says.
func (r *SIPRouter) peer(s, as string) (Peer, error) {
	if p, ok := r.aliases[strings.ToLower(s)]; ok {
		return p, nil
	}
	switch as {
	case AsPhone:
		return r.phone(s)
	case AsUsername:
		return ParsePeer("@" + strings.TrimPrefix(s, "@"))
	case AsID:
		return ParsePeer("id:" + strings.TrimPrefix(s, "id:"))
	}
	switch {
	case strings.HasPrefix(s, "@"), strings.HasPrefix(s, "id:"):
		return ParsePeer(s)
	case s != "" && (s[0] == '+' || s[0] >= '0' && s[0] <= '9' || s[0] == '('):
		return r.phone(s)
	}
	// A bare name: a username written without '@' (sip:echo@trunk).
	if validUsername(s) {
		return Peer{Kind: PeerUsername, Value: s}, nil
	}
	return Peer{}, fmt.Errorf("%w: %q is neither a number, an @username, id:NUMBER nor an alias", ErrNoRoute, s)
}

func (r *SIPRouter) phone(s string) (Peer, error) {
	n, err := r.numbers.Normalize(s)
	if err != nil {
		return Peer{}, err
	}
	return Peer{Kind: PeerPhone, Value: n}, nil
}

// Routing is the `routing` section of the configuration: both directions.
type Routing struct {
	// SIPToTelegram routes calls from the PBX to Telegram users.
	SIPToTelegram SIPRouting `yaml:"sip_to_telegram"`
	// TelegramToSIP routes calls from Telegram users to the PBX.
	TelegramToSIP TelegramRouting `yaml:"telegram_to_sip"`
}

// Validate checks both directions; messages name the setting.
func (r Routing) Validate() error {
	if err := r.SIPToTelegram.Validate(); err != nil {
		return err
	}
	return r.TelegramToSIP.Validate()
}
