package demo

import (
	"fmt"
	"strings"

	"github.com/tgsip/tgsip/telegram/emu"
)

// Behaviour is what a demo user does with a call.
type Behaviour int

// Behaviours of the demo users.
const (
	// Echo answers and sends back every Opus packet it receives.
	Echo Behaviour = iota
	// Tone answers and plays a 1 kHz tone, ignoring what it hears.
	Tone
	// Busy declines at once (discarded as busy).
	Busy
	// NoAnswer lets the call ring until Telegram's ring timeout.
	NoAnswer
	// Private refuses calls by its privacy settings (calls: nobody), so
	// phone.requestCall fails with USER_PRIVACY_RESTRICTED.
	Private
	// RelayOnly answers like Echo but allows peer-to-peer with nobody, so
	// the call's media goes through a reflector.
	RelayOnly
)

// behaviours names each behaviour (as the config's demo.users[].behavior
// spells it) and says what it does.
var behaviours = []struct{ name, description string }{
	Echo:      {"echo", "answers and sends back what it hears"},
	Tone:      {"tone", "answers and plays a 1 kHz tone"},
	Busy:      {"busy", "declines (busy)"},
	NoAnswer:  {"noanswer", "rings until the ring timeout"},
	Private:   {"private", "privacy settings refuse every call"},
	RelayOnly: {"relayonly", "answers and echoes; p2p disallowed, media through the reflector"},
}

// String is the behaviour's name: echo, tone, busy, noanswer, private or
// relayonly.
func (b Behaviour) String() string {
	if b >= 0 && int(b) < len(behaviours) {
		return behaviours[b].name
	}
	return fmt.Sprintf("Behaviour(%d)", int(b))
}

// Description says what the behaviour does, in a few words.
func (b Behaviour) Description() string {
	if b >= 0 && int(b) < len(behaviours) {
		return behaviours[b].description
	}
	return ""
}

// ParseBehaviour reads a behaviour's name (the config's
// demo.users[].behavior).
func ParseBehaviour(s string) (Behaviour, error) {
	for b, v := range behaviours {
		if v.name == s {
			return Behaviour(b), nil
		}
	}
	return 0, fmt.Errorf("demo: behaviour %q: want echo, tone, busy, noanswer, private or relayonly", s)
}

// answers reports whether the behaviour takes calls (and so needs media).
func (b Behaviour) answers() bool { return b == Echo || b == Tone || b == RelayOnly }

// Entry is one demo user: how to reach it and what it does.
type Entry struct {
	// Name is what a SIP caller dials (sip:echo@…); the trunk's routing
	// maps it to Username through an alias (Aliases), because Telegram
	// usernames need at least 5 characters.
	Name string
	// Phone is the user's number, E.164 with +.
	Phone string
	// Username is the Telegram username, without @.
	Username string
	// FirstName is the name Telegram clients show.
	FirstName string
	// Behaviour is what the user does with a call.
	Behaviour Behaviour
}

// Description says what the user does, for `tgsip demo` to print.
func (e Entry) Description() string { return e.Behaviour.Description() }

// NewEntry makes the demo user called name with behaviour b, the n-th
// (1 to 99) of its cast: username demo_<name> (lower case, each run of
// other characters than a-z and 0-9 made one underscore) and phone
// +99966210NN, in Telegram's test-number pattern 99966XYYYY with X the DC
// (2).
func NewEntry(name string, b Behaviour, n int) (Entry, error) {
	if b.Description() == "" {
		return Entry{}, fmt.Errorf("demo: %s: unknown behaviour %d", name, int(b))
	}
	if n < 1 || n > 99 {
		return Entry{}, fmt.Errorf("demo: %s: number %d out of 1..99", name, n)
	}
	username := usernameFor(name)
	if err := emu.ValidUsername(username); err != nil {
		return Entry{}, fmt.Errorf("demo: name %q: %w", name, err)
	}
	first := name
	if first != "" {
		first = strings.ToUpper(first[:1]) + first[1:]
	}
	return Entry{
		Name:      name,
		Phone:     fmt.Sprintf("+99966210%02d", n),
		Username:  username,
		FirstName: first,
		Behaviour: b,
	}, nil
}

// Directory is the default cast: one user per behaviour, named after it
// (echo, tone, busy, noanswer, private, relayonly), in that order.
func Directory() []Entry {
	out := make([]Entry, len(behaviours))
	for b := range behaviours {
		e, err := NewEntry(Behaviour(b).String(), Behaviour(b), b+1)
		if err != nil {
			panic(err) // the names above are valid; TestDirectory checks
		}
		out[b] = e
	}
	return out
}

// Aliases maps each entry's Name to "@username", in the form of the
// trunk's routing.sip_to_telegram.aliases, so sip:echo@trunk reaches
// @demo_echo.
func Aliases(entries []Entry) map[string]string {
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.Name] = "@" + e.Username
	}
	return m
}

// usernameFor turns a dialed name into a Telegram username: demo_ and the
// name in lower case with each run of characters a username cannot hold
// made one underscore, none at the end (emu.ValidUsername's rules).
func usernameFor(name string) string {
	var b strings.Builder
	b.WriteString("demo_")
	under := true // "demo_" ends with one
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}
