package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/tgsip/tgsip/telegram/account"
)

// problem is a Problem before it is placed: path is where in the tree it
// is ("sip.trunks[0].password").
type problem struct {
	path string
	msg  string
	Problem
}

func problemList(ps []problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = p.Problem
		out[i].Msg = p.msg
	}
	return out
}

// Validate checks a configuration for `tgsip serve` and reports every
// mistake, each naming its setting. It checks c as it is: Load also gives
// the accounts the telegram section's server and credentials first, and
// adds the places in the file.
func (c *Config) Validate() error {
	return joinProblems(c.problems(Options{}))
}

// ValidateDemo is Validate for `tgsip demo`, whose Telegram side is the
// emulator: the telegram section may be left out.
func (c *Config) ValidateDemo() error {
	return joinProblems(c.problems(Options{Demo: true}))
}

func joinProblems(ps []problem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = errors.New(p.msg)
	}
	return errors.Join(errs...)
}

// problems lists every mistake with its path in the tree.
func (c *Config) problems(opts Options) []problem {
	if opts.TelegramOnly {
		return c.Telegram.problems()
	}
	var ps []problem
	add := func(path, format string, args ...any) {
		ps = append(ps, problem{path: path, msg: path + ": " + fmt.Sprintf(format, args...)})
	}
	// Log.
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", "%q: use text or json", c.Log.Format)
	}
	// SIP: package sip's own checks, placed by the setting they name.
	for _, err := range split(c.SIP.Validate()) {
		ps = append(ps, problem{path: pathFromMessage(err.Error()), msg: err.Error()})
	}
	trunks := map[string]bool{}
	for i, t := range c.SIP.Trunks {
		if t.Name != "" && trunks[t.Name] {
			add(fmt.Sprintf("sip.trunks[%d].name", i), "%q is used by two trunks: give each its own name (it labels the calls in the logs)", t.Name)
		}
		trunks[t.Name] = true
	}
	// Media.
	m := c.Media
	if m.Opus.Complexity < 0 || m.Opus.Complexity > 10 {
		add("media.opus.complexity", "%d: use 0 (cheapest) to 10 (best)", m.Opus.Complexity)
	}
	if m.Opus.Bitrate < 16000 || m.Opus.Bitrate > 32000 {
		add("media.opus.bitrate", "%d: Telegram calls use 16000 to 32000 bit/s", m.Opus.Bitrate)
	}
	if m.Opus.PacketLossPercent < 0 || m.Opus.PacketLossPercent > 100 {
		add("media.opus.packet_loss_percent", "%d: use 0 (FEC only on reported loss) to 100", m.Opus.PacketLossPercent)
	}
	if m.Jitter.Min <= 0 || m.Jitter.Min > time.Second {
		add("media.jitter.min", "%s: use a wait above 0 and up to 1s (e.g. 20ms)", m.Jitter.Min)
	}
	if m.Jitter.Max < m.Jitter.Min || m.Jitter.Max > 2*time.Second {
		add("media.jitter.max", "%s: use at least jitter.min (%s) and at most 2s", m.Jitter.Max, m.Jitter.Min)
	}
	if m.Timeout < 0 {
		add("media.timeout", "%s: use 0 to never hang up on silence, or a positive duration", m.Timeout)
	}
	if m.FillAfter <= 0 {
		add("media.fill_after", "%s: use a positive duration (e.g. 1s)", m.FillAfter)
	}
	// Telegram.
	if !opts.Demo {
		ps = append(ps, c.Telegram.problems()...)
		ps = append(ps, c.accountRefs()...)
	}
	if c.Telegram.RingTimeout < 0 {
		add("telegram.ring_timeout", "%s: use 0 for Telegram's own ring timeout, or a positive duration", c.Telegram.RingTimeout)
	}
	if c.Telegram.RetryAfter <= 0 {
		add("telegram.retry_after", "%s: use a positive duration (e.g. 30s)", c.Telegram.RetryAfter)
	}
	if c.Telegram.PeerFloodBackOff <= 0 {
		add("telegram.peer_flood_backoff", "%s: use a positive duration (e.g. 24h)", c.Telegram.PeerFloodBackOff)
	}
	if mp := c.Telegram.MediaPort; mp.Shared {
		if _, err := netip.ParseAddrPort(mp.Listen); err != nil {
			add("telegram.media_port.listen", "%q: use IP:port, e.g. 0.0.0.0:40500 (port 0: a free one at start)", mp.Listen)
		}
	}
	// Routing: package b2bua's own checks.
	if err := c.Routing.Validate(); err != nil {
		ps = append(ps, problem{path: pathFromMessage(err.Error()), msg: err.Error()})
	}
	ps = append(ps, c.outboundNeeded(opts)...)
	if c.Drain.Grace < 0 {
		add("drain.grace", "%s: use 0 to hang up at once, or a positive duration", c.Drain.Grace)
	}
	if opts.Demo {
		ps = append(ps, c.Demo.problems()...)
	}
	return ps
}

// problems checks the Telegram server and the accounts.
func (t Telegram) problems() []problem {
	var ps []problem
	add := func(path, format string, args ...any) {
		ps = append(ps, problem{path: path, msg: path + ": " + fmt.Sprintf(format, args...)})
	}
	if a := t.Server.Address; a != "" {
		if _, err := netip.ParseAddrPort(a); err != nil {
			add("telegram.server.address", "%q: want IP:port (e.g. the production address shown at my.telegram.org)", a)
		}
	}
	if t.Server.DC < 0 {
		add("telegram.server.dc", "%d: a data-center id is positive", t.Server.DC)
	}
	if len(t.Accounts) == 0 {
		add("telegram.accounts", "no accounts: add at least one Telegram account (see config.example.yaml)")
	}
	names := map[string]int{}
	files := map[string]int{}
	phones := map[string]int{}
	for i, a := range t.Accounts {
		where := fmt.Sprintf("telegram.accounts[%d]", i)
		missing := map[string]bool{}
		var msgs []string
		for _, err := range split(errors.Unwrap(a.Validate())) {
			msg := err.Error()
			if field, _, _ := strings.Cut(msg, " "); strings.Contains(msg, " is required") {
				missing[field] = true
			}
			msgs = append(msgs, msg)
		}
		noServer := missing["dc"] && missing["dc_address"] && missing["public_key_file"]
		noAPI := missing["api_id"] && missing["api_hash"]
		if noServer {
			ps = append(ps, problem{path: where, msg: fmt.Sprintf("%s (%s): no Telegram server: set telegram.server (address, dc, public_key_file), or dc_address, dc and public_key_file here; none is built in", where, a.Name)})
		}
		if noAPI {
			ps = append(ps, problem{path: where, msg: fmt.Sprintf("%s (%s): no api_id and api_hash (from my.telegram.org): set them here, in telegram, or in the environment as %s and %s", where, a.Name, account.EnvAPIID, account.EnvAPIHash)})
		}
		for _, msg := range msgs {
			field, _, _ := strings.Cut(msg, " ")
			switch {
			case noServer && (field == "dc" || field == "dc_address" || field == "public_key_file"):
				continue
			case noAPI && (field == "api_id" || field == "api_hash"):
				continue
			case field == "dc" || field == "dc_address" || field == "public_key_file":
				msg += " (here or in telegram.server)"
			case field == "api_id" || field == "api_hash":
				msg = strings.Replace(msg, "or set", "or in telegram, or set", 1)
			}
			ps = append(ps, problem{path: where + "." + field, msg: fmt.Sprintf("%s (%s): %s", where, a.Name, msg)})
		}
		if j, dup := names[a.Name]; dup && a.Name != "" {
			add(where+".name", "%q is also the name of accounts[%d]: names must be unique", a.Name, j)
		}
		names[a.Name] = i
		if j, dup := phones[a.Phone]; dup && a.Phone != "" {
			add(where+".phone", "%s is also the phone of accounts[%d]: one Telegram account is one entry (it carries one call at a time)", a.Phone, j)
		}
		phones[a.Phone] = i
		if j, dup := files[a.SessionFile]; dup && a.SessionFile != "" {
			add(where+".session_file", "%s is also the session file of accounts[%d]: each account needs its own", a.SessionFile, j)
		}
		files[a.SessionFile] = i
	}
	return ps
}

// accountRefs checks that routing names only configured accounts.
func (c *Config) accountRefs() []problem {
	known := map[string]bool{}
	for _, a := range c.Telegram.Accounts {
		known[a.Name] = true
	}
	var ps []problem
	check := func(base string, i int, accounts []string) {
		for j, name := range accounts {
			if !known[name] {
				path := fmt.Sprintf("%s.rules[%d].accounts[%d]", base, i, j)
				ps = append(ps, problem{path: path, msg: fmt.Sprintf("%s: %q is not one of telegram.accounts", path, name)})
			}
		}
	}
	for i, r := range c.Routing.SIPToTelegram.Rules {
		check("routing.sip_to_telegram", i, r.Accounts)
	}
	for i, r := range c.Routing.TelegramToSIP.Rules {
		check("routing.telegram_to_sip", i, r.Accounts)
	}
	return ps
}

// outboundNeeded reports each telegram_to_sip target while
// sip.outbound.uri is empty: package sip sends every call from Telegram
// through the outbound settings (its URI, credentials, TLS and SRTP
// policy; sip.Server.Dial refuses to dial without it), so a target alone
// would fail every Telegram call at run time. The demo's --inbound-to
// (demo.inbound_to) replaces the targets and sets the URI itself.
func (c *Config) outboundNeeded(opts Options) []problem {
	if c.SIP.Outbound.URI != "" || (opts.Demo && c.Demo.InboundTo != "") {
		return nil
	}
	var ps []problem
	add := func(path, target string) {
		ps = append(ps, problem{path: path, msg: fmt.Sprintf(
			"%s: %q: calls from Telegram need sip.outbound.uri (the PBX they are sent to, e.g. \"sip:pbx.example.org:5060\"); set it, or remove the target", path, target)})
	}
	t := c.Routing.TelegramToSIP
	if t.Target != "" {
		add("routing.telegram_to_sip.target", t.Target)
	}
	for i, r := range t.Rules {
		if r.Target != "" && !r.Reject {
			add(fmt.Sprintf("routing.telegram_to_sip.rules[%d].target", i), r.Target)
		}
	}
	return ps
}

// problems checks the demo section.
func (d Demo) problems() []problem {
	var ps []problem
	add := func(path, format string, args ...any) {
		ps = append(ps, problem{path: path, msg: path + ": " + fmt.Sprintf(format, args...)})
	}
	if !d.SIPListen.IsValid() {
		add("demo.sip_listen", "set an IP:port (default 127.0.0.1:5060)")
	}
	if !d.EmulatorListen.IsValid() {
		add("demo.emulator_listen", "set an IP:port (default 127.0.0.1:0, a free port)")
	}
	if d.LoginCode == "" || strings.Trim(d.LoginCode, "0123456789") != "" {
		add("demo.login_code", "%q: use digits, as Telegram's codes are", d.LoginCode)
	}
	if d.InboundTo != "" && !strings.HasPrefix(d.InboundTo, "sip:") && !strings.HasPrefix(d.InboundTo, "sips:") {
		add("demo.inbound_to", "%q: write a SIP URI (sip:user@host:port)", d.InboundTo)
	}
	names := map[string]bool{}
	for i, u := range d.Users {
		where := fmt.Sprintf("demo.users[%d]", i)
		if u.Name == "" || strings.ContainsAny(u.Name, " @:;<>\"") {
			add(where+".name", "%q: use a name a SIP phone can dial (letters, digits, _ . -)", u.Name)
		}
		if names[strings.ToLower(u.Name)] {
			add(where+".name", "%q is listed twice", u.Name)
		}
		names[strings.ToLower(u.Name)] = true
		if !slices.Contains(Behaviors, u.Behavior) {
			add(where+".behavior", "%q: use one of %s", u.Behavior, strings.Join(Behaviors, ", "))
		}
	}
	return ps
}

// split undoes errors.Join.
func split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var (
	pathToken  = regexp.MustCompile(`^[a-z_][a-z0-9_]*(?:\[\d+\]|\["(?:[^"\\]|\\.)*"\]|\.[a-z_][a-z0-9_]*)*`)
	ruleName   = regexp.MustCompile(`\] \([^)]*\)`)
	quotedName = regexp.MustCompile(`^ *"(?:[^"\\]|\\.)*"`)
)

// pathFromMessage reads the setting a message of package sip, sdp or
// b2bua names at its start ("sip: trunks[0] "pbx": username without
// password", "routing.sip_to_telegram.rules[2] (x): …"), plus the word
// after it when that is a key below it ("listen[0]: addr is …").
func pathFromMessage(msg string) string {
	base := ""
	switch {
	case strings.HasPrefix(msg, "sip: "):
		base, msg = "sip.", msg[len("sip: "):]
	case strings.HasPrefix(msg, "sdp: "):
		base, msg = "sip.media.", msg[len("sdp: "):]
	}
	msg = ruleName.ReplaceAllString(msg, "]")
	tok := pathToken.FindString(msg)
	rest := strings.TrimPrefix(msg[len(tok):], ":")
	rest = quotedName.ReplaceAllString(rest, "")
	rest = strings.TrimLeft(rest, ": ")
	if next := pathToken.FindString(rest); next != "" && tok != "" {
		tok += "." + next
	}
	return strings.TrimSuffix(base+tok, ".")
}

// locate sets the problem's line and column: the deepest node of its path
// the file has (the value when the path ends at a key of the file, the
// nearest enclosing entry when the file leaves the setting out).
func (p *problem) locate(f *ast.File) {
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return
	}
	var best ast.Node
	n := f.Docs[0].Body
	for _, seg := range segments(p.path) {
		var next, mark ast.Node
		if idx, err := strconv.Atoi(seg); err == nil {
			if seq, ok := untag(n).(*ast.SequenceNode); ok && idx < len(seq.Values) {
				next, mark = seq.Values[idx], seq.Values[idx]
			}
		} else {
			for _, kv := range mappingPairs(n) {
				if keyString(kv.Key) == seg {
					next, mark = kv.Value, kv.Value
					if _, scalar := kv.Value.(ast.ScalarNode); !scalar {
						// A section or list: its key is the line an
						// admin looks for.
						mark = kv.Key
					}
					break
				}
			}
		}
		if next == nil {
			break
		}
		n, best = next, mark
	}
	if pairs := mappingPairs(best); len(pairs) > 0 {
		// An entry of a list: its first key, not the colon after it.
		best = pairs[0].Key
	}
	if best == nil || best.GetToken() == nil {
		return
	}
	pos := best.GetToken().Position
	p.Line, p.Column = pos.Line, pos.Column
}

func untag(n ast.Node) ast.Node {
	if t, ok := n.(*ast.TagNode); ok {
		return t.Value
	}
	return n
}

// segments splits `a.b[2].c["k"]` into a, b, 2, c, k.
func segments(path string) []string {
	var out []string
	for path != "" {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if strings.HasPrefix(path, `["`) {
				// A quoted map key: find its closing quote.
				if q, err := strconv.QuotedPrefix(path[1:]); err == nil {
					k, _ := strconv.Unquote(q)
					out = append(out, k)
					path = strings.TrimPrefix(path[1+len(q):], "]")
					continue
				}
			}
			if end < 0 {
				return out
			}
			out = append(out, path[1:end])
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			out = append(out, path[:end])
			path = path[end:]
		}
	}
	return out
}

// Summary counts what the configuration holds, for `tgsip check-config`.
func (c *Config) Summary() string {
	return fmt.Sprintf("%d SIP listeners, %d trunks, %d Telegram accounts, %d SIP→Telegram rules, %d aliases, %d Telegram→SIP rules",
		len(c.SIP.Listen), len(c.SIP.Trunks), len(c.Telegram.Accounts),
		len(c.Routing.SIPToTelegram.Rules), len(c.Routing.SIPToTelegram.Aliases), len(c.Routing.TelegramToSIP.Rules))
}
