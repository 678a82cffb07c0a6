package b2bua

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Telegram → SIP routing: whether a Telegram call to one of our accounts is
// taken, where on the PBX it goes, and how the caller is presented.

// TelegramRouting is the `routing.telegram_to_sip` configuration.
type TelegramRouting struct {
	// Target is the SIP URI template calls go to when no rule names one,
	// e.g. "sip:{phone|id}@pbx.example.com". Placeholders: {id},
	// {username}, {phone} ("+E.164"), {account}; {a|b|…} takes the first
	// the caller has. Empty: calls no rule routes are declined.
	Target string `yaml:"target"`
	// Block lists callers always declined ("+E.164", "@username", "id:N").
	Block []string `yaml:"block"`
	// Allow, when not empty, lists the only callers taken.
	Allow []string `yaml:"allow"`
	// Rules are tried in order after Block and Allow; the first whose
	// accounts and callers match decides.
	Rules []TelegramRule `yaml:"rules"`
}

// TelegramRule is one Telegram → SIP rule.
type TelegramRule struct {
	// Name appears in logs.
	Name string `yaml:"name"`
	// Accounts the call must arrive on; empty: any account.
	Accounts []string `yaml:"accounts"`
	// Callers the rule applies to ("+E.164", "@username", "id:N"); empty:
	// any caller.
	Callers []string `yaml:"callers"`
	// Reject declines the call (a per-account or per-caller block list).
	Reject bool `yaml:"reject"`
	// Target is the SIP URI template; empty: TelegramRouting.Target.
	Target string `yaml:"target"`
}

// Validate checks the configuration; messages name the setting.
func (c TelegramRouting) Validate() error {
	_, err := NewTelegramRouter(c)
	return err
}

// Caller is the Telegram user calling one of our accounts, as Telegram
// describes them (tg.User). Every field comes from the network.
type Caller struct {
	ID        int64
	Username  string
	Phone     string // digits, as Telegram sends it (no '+'); "" when hidden
	FirstName string
	LastName  string
}

// TelegramRouter routes incoming Telegram calls. Immutable; safe for
// concurrent use.
type TelegramRouter struct {
	target string
	block  []Peer
	allow  []Peer
	rules  []telegramRule
}

type telegramRule struct {
	TelegramRule
	callers  []Peer
	accounts map[string]bool
}

// NewTelegramRouter compiles a configuration.
func NewTelegramRouter(c TelegramRouting) (*TelegramRouter, error) {
	const base = "routing.telegram_to_sip"
	r := &TelegramRouter{target: c.Target}
	if c.Target != "" {
		if err := checkTemplate(c.Target); err != nil {
			return nil, fmt.Errorf("%s.target: %w", base, err)
		}
	}
	var err error
	if r.block, err = parseCallers(c.Block, base+".block"); err != nil {
		return nil, err
	}
	if r.allow, err = parseCallers(c.Allow, base+".allow"); err != nil {
		return nil, err
	}
	for i, rule := range c.Rules {
		where := fmt.Sprintf("%s.rules[%d]", base, i)
		if rule.Name != "" {
			where += fmt.Sprintf(" (%s)", rule.Name)
		}
		tr := telegramRule{TelegramRule: rule}
		if tr.callers, err = parseCallers(rule.Callers, where+".callers"); err != nil {
			return nil, err
		}
		if len(rule.Accounts) > 0 {
			tr.accounts = make(map[string]bool, len(rule.Accounts))
			for _, a := range rule.Accounts {
				tr.accounts[a] = true
			}
		}
		switch {
		case rule.Reject && rule.Target != "":
			return nil, fmt.Errorf("%s: a rule that rejects has no target", where)
		case rule.Target != "":
			if err := checkTemplate(rule.Target); err != nil {
				return nil, fmt.Errorf("%s.target: %w", where, err)
			}
		case !rule.Reject && c.Target == "":
			return nil, fmt.Errorf("%s: set a target here or in %s.target", where, base)
		}
		r.rules = append(r.rules, tr)
	}
	return r, nil
}

func parseCallers(list []string, where string) ([]Peer, error) {
	out := make([]Peer, 0, len(list))
	for i, s := range list {
		p, err := ParsePeer(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", where, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// matches reports whether the caller is the peer p.
func (c Caller) matches(p Peer) bool {
	switch p.Kind {
	case PeerID:
		return strconv.FormatInt(c.ID, 10) == p.Value
	case PeerUsername:
		return c.Username != "" && strings.EqualFold(c.Username, p.Value)
	case PeerPhone:
		return c.Phone != "" && "+"+c.Phone == p.Value
	}
	return false
}

func matchesAny(c Caller, list []Peer) bool {
	for _, p := range list {
		if c.matches(p) {
			return true
		}
	}
	return false
}

// TelegramRoute is where an incoming Telegram call goes on the PBX.
type TelegramRoute struct {
	// Target is the SIP URI to INVITE.
	Target string
	// Rule names the rule that decided ("" for the default target).
	Rule string
	// Identity is how the caller is presented to the PBX.
	Identity CallerIdentity
}

// Route decides an incoming call on account from caller. A refused call's
// error wraps ErrCallerRejected (the account declines, busy on Telegram);
// one with nowhere to go wraps ErrNoRoute.
func (r *TelegramRouter) Route(account string, caller Caller) (TelegramRoute, error) {
	caller = caller.sanitized()
	who := caller.logName()
	if matchesAny(caller, r.block) {
		return TelegramRoute{}, fmt.Errorf("%w: %s is on the block list", ErrCallerRejected, who)
	}
	if len(r.allow) > 0 && !matchesAny(caller, r.allow) {
		return TelegramRoute{}, fmt.Errorf("%w: %s is not on the allow list", ErrCallerRejected, who)
	}
	tmpl, rule := r.target, ""
	for i, tr := range r.rules {
		if tr.accounts != nil && !tr.accounts[account] {
			continue
		}
		if len(tr.callers) > 0 && !matchesAny(caller, tr.callers) {
			continue
		}
		rule = tr.Name
		if rule == "" {
			rule = fmt.Sprintf("#%d", i)
		}
		if tr.Reject {
			return TelegramRoute{Rule: rule}, fmt.Errorf("%w: rule %s rejects %s", ErrCallerRejected, rule, who)
		}
		if tr.Target != "" {
			tmpl = tr.Target
		}
		break
	}
	if tmpl == "" {
		return TelegramRoute{Rule: rule}, fmt.Errorf("%w: no target for %s on account %q", ErrNoRoute, who, account)
	}
	uri, err := expandTemplate(tmpl, caller, account)
	if err != nil {
		return TelegramRoute{Rule: rule}, err
	}
	return TelegramRoute{Target: uri, Rule: rule, Identity: caller.Identity()}, nil
}

// sanitized drops fields that are not what Telegram promises, so nothing
// from the network reaches a SIP header or URI unchecked.
func (c Caller) sanitized() Caller {
	if c.Username != "" && !validUsername(c.Username) {
		c.Username = ""
	}
	if c.Phone != "" && !isE164("+"+c.Phone) {
		c.Phone = ""
	}
	if c.ID < 0 {
		c.ID = 0
	}
	return c
}

func (c Caller) logName() string {
	switch {
	case c.Username != "":
		return fmt.Sprintf("Telegram user %d (@%s)", c.ID, c.Username)
	default:
		return fmt.Sprintf("Telegram user %d", c.ID)
	}
}

// CallerIdentity is the caller as the PBX sees them.
type CallerIdentity struct {
	// DisplayName is the From display name, safe to put in a quoted-string
	// (RFC 3261 §25.1): no control or format characters, no '"' or '\'.
	DisplayName string
	// User is the From URI user: "+E.164" when the phone is visible, else
	// the Telegram user id.
	User string
	// Headers are X-Telegram-User-Id, X-Telegram-Username and
	// X-Telegram-Phone, those the caller has.
	Headers []Header
}

// Header is one SIP header.
type Header struct {
	Name  string
	Value string
}

// maxDisplayName bounds the display name in runes.
const maxDisplayName = 64

// Identity presents the caller to the PBX.
func (c Caller) Identity() CallerIdentity {
	c = c.sanitized()
	id := CallerIdentity{DisplayName: sanitizeDisplayName(strings.TrimSpace(c.FirstName + " " + c.LastName))}
	if c.Phone != "" {
		id.User = "+" + c.Phone
	} else {
		id.User = strconv.FormatInt(c.ID, 10)
	}
	id.Headers = append(id.Headers, Header{"X-Telegram-User-Id", strconv.FormatInt(c.ID, 10)})
	if c.Username != "" {
		id.Headers = append(id.Headers, Header{"X-Telegram-Username", c.Username})
	}
	if c.Phone != "" {
		id.Headers = append(id.Headers, Header{"X-Telegram-Phone", "+" + c.Phone})
	}
	return id
}

// sanitizeDisplayName keeps a Telegram name fit for a SIP display name:
// valid UTF-8 (RFC 3261 §25.1 TEXT-UTF8), no control characters (header
// injection), no format characters (bidi overrides that disguise a name),
// no '"' or '\' (so quoting needs no escapes), spaces collapsed, at most
// maxDisplayName runes.
func sanitizeDisplayName(s string) string {
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == '"', r == '\\', r == utf8.RuneError:
			continue
		}
		if n >= maxDisplayName {
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Template placeholders.
var placeholders = map[string]bool{"id": true, "username": true, "phone": true, "account": true}

// checkTemplate validates a target template by expanding it for a caller
// who has every field.
func checkTemplate(t string) error {
	if !strings.HasPrefix(t, "sip:") && !strings.HasPrefix(t, "sips:") {
		return fmt.Errorf("%q: a target must start with sip: or sips: (e.g. sip:{id}@pbx.example.com)", t)
	}
	uri, err := expandTemplate(t, Caller{ID: 1, Username: "user", Phone: "4930123456"}, "account")
	if err != nil {
		return err
	}
	if strings.ContainsAny(uri, " \t\r\n<>\"") {
		return fmt.Errorf("%q: a SIP URI has no spaces, quotes or angle brackets", t)
	}
	host := uri[strings.IndexByte(uri, ':')+1:]
	if i := strings.IndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if host == "" || host[0] == ';' || host[0] == ':' {
		return fmt.Errorf("%q: the target has no host", t)
	}
	return nil
}

// expandTemplate fills {name} and {a|b} placeholders, each value escaped
// for a SIP URI user part.
func expandTemplate(t string, c Caller, account string) (string, error) {
	values := map[string]string{"account": account, "username": c.Username}
	if c.ID > 0 {
		values["id"] = strconv.FormatInt(c.ID, 10)
	}
	if c.Phone != "" {
		values["phone"] = "+" + c.Phone
	}
	var b strings.Builder
	for {
		i := strings.IndexAny(t, "{}")
		if i < 0 {
			b.WriteString(t)
			return b.String(), nil
		}
		if t[i] == '}' {
			return "", fmt.Errorf("%w: template %q: a closing brace without an opening one", ErrNoRoute, t)
		}
		b.WriteString(t[:i])
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("%w: template %q: an opening brace is never closed", ErrNoRoute, t)
		}
		names := strings.Split(t[i+1:i+j], "|")
		val := ""
		for _, name := range names {
			name = strings.TrimSpace(name)
			if !placeholders[name] {
				return "", fmt.Errorf("%w: template %q: unknown placeholder {%s} (want id, username, phone or account)", ErrNoRoute, t, name)
			}
			if val == "" {
				val = values[name]
			}
		}
		if val == "" {
			return "", fmt.Errorf("%w: the caller has no %s for target %q", ErrNoRoute, strings.Join(names, " or "), t)
		}
		b.WriteString(escapeURIUser(val))
		t = t[i+j+1:]
	}
}

// escapeURIUser percent-encodes what may not appear in a SIP URI user part
// (RFC 3261 §25.1: unreserved / escaped / user-unreserved).
func escapeURIUser(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
