package config

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/tgsip/tgsip/b2bua"
	"github.com/tgsip/tgsip/rtpbridge/codec"
)

func noEnv(string) string { return "" }

// minimal is the smallest file `tgsip serve` accepts.
const minimal = `sip:
  listen:
    - {transport: udp, addr: "127.0.0.1:5060"}
  rtp_ports: {min: 40000, max: 40100}
telegram:
  server: {address: "127.0.0.1:4430", dc: 2, public_key_file: tg.pem}
  api_id: 1
  api_hash: abc
  accounts:
    - {name: main, session_file: main.session}
`

func TestMinimalFile(t *testing.T) {
	c, err := Parse([]byte(minimal), "/etc/tgsip/tgsip.yaml", Options{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	a := c.Telegram.Accounts[0]
	// The account takes the server and credentials of the telegram
	// section, and paths are anchored at the file's folder.
	if a.DCAddress != "127.0.0.1:4430" || a.DC != 2 || a.PublicKeyFile != "/etc/tgsip/tg.pem" ||
		a.SessionFile != "/etc/tgsip/main.session" || a.APIID != 1 || a.APIHash != "abc" {
		t.Errorf("account not completed: %+v", a)
	}
	// Keys left out keep Default's values.
	d := Default()
	if c.Media != d.Media || c.Log != d.Log || c.Drain != d.Drain || len(c.Demo.Users) != len(Behaviors) {
		t.Errorf("defaults lost: %+v", c)
	}
}

// TestProblemsArePlaced: each kind of mistake is reported with the line
// and column an admin must edit.
func TestProblemsArePlaced(t *testing.T) {
	for _, tc := range []struct {
		name, edit, with string
		line, col        int
		want             string
	}{
		{"unknown key", "  api_id: 1\n", "  api_id: 1\n  api_key: x\n", 8, 3, `unknown field "api_key"`},
		{"wrong type", "dc: 2,", "dc: two,", 6, 43, "text cannot go here: write a whole number"},
		{"bad duration", minimal, minimal + "drain: {grace: 5q}\n", 11, 16, "not a duration"},
		{"bad address", `addr: "127.0.0.1:5060"`, `addr: "127.0.0.1"`, 3, 30, "not an IP:port"},
		{"bad srtp policy", "", "", 0, 0, ""},
		{"invalid value", minimal, minimal + "log:\n  level: loud\n", 12, 10, `log.level: "loud"`},
		{"sip check", "transport: udp", "transport: sctp", 3, 19, `transport "sctp" is not udp, tcp or tls`},
		{"routing check", minimal, minimal + "routing:\n  sip_to_telegram:\n    rules:\n      - {name: a, as: phone}\n      - {name: b, as: mail}\n", 15, 23, `rules[1] (b): as "mail"`},
		{"unknown account", minimal, minimal + "routing:\n  sip_to_telegram:\n    rules:\n      - accounts: [main, nobody]\n", 14, 26, `"nobody" is not one of telegram.accounts`},
		{"account check", "session_file: main.session", "session_file: main.session, phone: \"555\"", 10, 55, `phone "555"`},
		{"alias check", minimal, minimal + "routing:\n  sip_to_telegram:\n    aliases:\n      boss: \"id:x\"\n", 14, 13, `aliases["boss"]`},
		{"same phone", "    - {name: main, session_file: main.session}\n", "    - {name: main, session_file: main.session, phone: \"+15550001\"}\n    - {name: two, session_file: two.session, phone: \"+15550001\"}\n", 11, 53, "also the phone of accounts[0]"},
		{"media check", minimal, minimal + "media:\n  jitter: {min: 50ms, max: 10ms}\n", 12, 28, "media.jitter.max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(minimal, tc.edit, tc.with, 1)
			if tc.edit == minimal {
				src = tc.with
			}
			if tc.name == "bad srtp policy" {
				src = strings.Replace(minimal, "  rtp_ports:", "  trunks:\n    - {name: p, allow: [10.0.0.0/8], srtp: sometimes}\n  rtp_ports:", 1)
				tc.line, tc.col, tc.want = 5, 44, "use off, optional or required"
			}
			_, err := Parse([]byte(src), "t.yaml", Options{Getenv: noEnv})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			for _, p := range ce.Problems {
				if strings.Contains(p.Msg, tc.want) {
					if p.Line != tc.line || p.Column != tc.col {
						t.Errorf("%q at %d:%d, want %d:%d\n%s", p.Msg, p.Line, p.Column, tc.line, tc.col, src)
					}
					return
				}
			}
			t.Errorf("no problem says %q: %v", tc.want, err)
		})
	}
}

// TestEmptyKeysKeepDefaults: a section whose lines are all commented out
// ("log:" alone) is a section left out, not one set to zero.
func TestEmptyKeysKeepDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal+"log:\nmedia:\n  jitter:\n  timeout:\ndemo:\n  users:\n"), "t.yaml", Options{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Log != d.Log || c.Media != d.Media || len(c.Demo.Users) != len(d.Demo.Users) {
		t.Errorf("empty keys did not keep the defaults: %+v %+v", c.Log, c.Media)
	}
	// An unknown key stays an error even without a value.
	if _, err := Parse([]byte(minimal+"log:\n  levle:\n"), "t.yaml", Options{Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), `t.yaml:12:3: unknown field "levle"`) {
		t.Errorf("empty unknown key: %v", err)
	}
	if _, err := Parse([]byte(minimal+"---\nlog: {}\n"), "t.yaml", Options{Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "2 YAML documents") {
		t.Errorf("two documents: %v", err)
	}
}

func TestEveryProblemReported(t *testing.T) {
	src := minimal + "log: {level: loud, format: xml}\ndrain: {grace: -1s}\n"
	_, err := Parse([]byte(src), "t.yaml", Options{Getenv: noEnv})
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "t.yaml:11:14: log.level") {
		t.Errorf("message %q does not start with file:line:column", err)
	}
}

func TestAPICredentialsFromEnvironment(t *testing.T) {
	src := strings.Replace(strings.Replace(minimal, "  api_id: 1\n", "", 1), "  api_hash: abc\n", "", 1)
	env := map[string]string{"TGSIP_API_ID": "777", "TGSIP_API_HASH": "fromenv"}
	c, err := Parse([]byte(src), "t.yaml", Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Telegram.Accounts[0]; a.APIID != 777 || a.APIHash != "fromenv" {
		t.Errorf("environment not used: %+v", a)
	}
	// The file wins over the environment.
	c, err = Parse([]byte(minimal), "t.yaml", Options{Getenv: func(k string) string { return env[k] }})
	if err != nil || c.Telegram.Accounts[0].APIID != 1 {
		t.Errorf("file value lost: %v %+v", err, c)
	}
	env["TGSIP_API_ID"] = "seven"
	if _, err := Parse([]byte(src), "t.yaml", Options{Getenv: func(k string) string { return env[k] }}); err == nil || !strings.Contains(err.Error(), "TGSIP_API_ID") {
		t.Errorf("bad TGSIP_API_ID not reported: %v", err)
	}
	if _, err := Parse([]byte(src), "t.yaml", Options{Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "no api_id and api_hash") {
		t.Errorf("missing api_id not reported: %v", err)
	}
}

// TestNoBuiltInServer: an account with no server anywhere is an error, so
// nothing reaches a Telegram address the admin did not write.
func TestNoBuiltInServer(t *testing.T) {
	src := strings.Replace(minimal, "  server: {address: \"127.0.0.1:4430\", dc: 2, public_key_file: tg.pem}\n", "", 1)
	_, err := Parse([]byte(src), "t.yaml", Options{Getenv: noEnv})
	if err == nil || !strings.Contains(err.Error(), "t.yaml:9:8: telegram.accounts[0] (main): no Telegram server") {
		t.Errorf("missing server not reported: %v", err)
	}
	// One setting missing is named.
	src = strings.Replace(minimal, "dc: 2, ", "", 1)
	if _, err := Parse([]byte(src), "t.yaml", Options{Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "dc is required") {
		t.Errorf("missing dc not reported: %v", err)
	}
}

func TestDemoNeedsNoTelegramSection(t *testing.T) {
	src := "demo: {sip_listen: \"127.0.0.1:5070\"}\n"
	c, err := Parse([]byte(src), "t.yaml", Options{Demo: true, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SIP.Listen) != 2 || c.SIP.Listen[0].Addr.Port() != 5070 {
		t.Errorf("demo listeners: %+v", c.SIP.Listen)
	}
	if _, err := Parse([]byte(src), "t.yaml", Options{Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "no accounts") {
		t.Errorf("serve accepted a file without accounts: %v", err)
	}
	bad := "demo: {users: [{name: echo, behavior: sing}]}\n"
	if _, err := Parse([]byte(bad), "t.yaml", Options{Demo: true, Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "t.yaml:1:39: demo.users[0].behavior") {
		t.Errorf("bad demo behaviour: %v", err)
	}
}

func TestSecretsRedacted(t *testing.T) {
	c, err := Load("../../config.example.yaml", Options{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "config", c)
	for _, out := range []string{c.String(), fmt.Sprint(c), logged.String()} {
		for _, secret := range []string{"change-me", "0123456789abcdef"} {
			if strings.Contains(out, secret) {
				t.Errorf("secret %q printed:\n%s", secret, out)
			}
		}
	}
	if !strings.Contains(c.String(), redacted) || !strings.Contains(logged.String(), "office") {
		t.Errorf("redacted output lost its content:\n%s\n%s", c.String(), logged.String())
	}
	if c.SIP.Trunks[0].Password != "change-me" {
		t.Error("String changed the configuration")
	}
}

// TestDefaultsMatchPackages: the media defaults here are the ones the
// media code uses when a field is zero.
func TestDefaultsMatchPackages(t *testing.T) {
	if DefaultOpusComplexity != codec.DefaultComplexity || DefaultOpusBitrate != codec.DefaultOpusBitrate ||
		DefaultPacketLossPercent != codec.DefaultPacketLossPercent {
		t.Error("opus defaults differ from rtpbridge/codec")
	}
	if DefaultRetryAfter != b2bua.DefaultRetryAfter || DefaultPeerFloodBackOff != b2bua.DefaultPeerFloodBackOff {
		t.Error("pool defaults differ from b2bua")
	}
	if !slices.Contains(Behaviors, Default().Demo.Users[0].Behavior) {
		t.Error("default demo users")
	}
	b := Default().Media.Bridge()
	if b.Jitter.Min != DefaultJitterMin || !b.RenderDTMF || b.DetectDTMF || b.MediaTimeout != DefaultMediaTimeout {
		t.Errorf("bridge config: %+v", b)
	}
}

// TestOpusToCodec: the section's 0 (libopus 0) reaches codec.Options as
// -1, since codec.Options reads 0 as "default".
func TestOpusToCodec(t *testing.T) {
	if (Opus{}).CodecComplexity() != -1 || (Opus{Complexity: 5}).CodecComplexity() != 5 ||
		(Opus{}).CodecPacketLoss() != -1 || (Opus{PacketLossPercent: 10}).CodecPacketLoss() != 10 {
		t.Error("zero is not passed as libopus 0")
	}
}

// TestStringReadsBack: the printed configuration (check-config --print)
// is itself a valid file that reads back to the same configuration, but
// for the redacted secrets.
func TestStringReadsBack(t *testing.T) {
	c, err := Load(examplePath, Options{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse([]byte(c.String()), "printed.yaml", Options{Getenv: noEnv})
	if err != nil {
		t.Fatalf("%v\n%s", err, c.String())
	}
	want := c.Redacted()
	got := back.Redacted()
	if fmt.Sprintf("%+v", want) != fmt.Sprintf("%+v", got) {
		t.Errorf("printed config reads back differently:\n%+v\n%+v", want, got)
	}
}

func TestSegments(t *testing.T) {
	got := segments(`routing.sip_to_telegram.aliases["a.b\"c"].x[3]`)
	want := []string{"routing", "sip_to_telegram", "aliases", `a.b"c`, "x", "3"}
	if !slices.Equal(got, want) {
		t.Errorf("segments = %q, want %q", got, want)
	}
	if p := pathFromMessage(`routing.sip_to_telegram.aliases["boss"]: bad peer`); !strings.HasPrefix(p, `routing.sip_to_telegram.aliases["boss"]`) {
		t.Errorf("alias path %q", p)
	}
}
