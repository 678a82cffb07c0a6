package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigTargetWithoutOutbound: a telegram_to_sip target (the
// default one and a rule's) without sip.outbound.uri is reported at the
// target's line and column with exit 1, since every call from Telegram
// would fail at run time; a rejecting rule's target, a file with the URI
// set, and demo --config with inbound_to (which sets the URI) pass.
func TestCheckConfigTargetWithoutOutbound(t *testing.T) {
	t.Setenv("TGSIP_API_ID", "")
	t.Setenv("TGSIP_API_HASH", "")
	const base = `sip:
  listen:
    - {transport: udp, addr: "127.0.0.1:5060"}
  rtp_ports: {min: 40000, max: 40100}
telegram:
  server: {address: "127.0.0.1:4430", dc: 2, public_key_file: tg.pem}
  api_id: 1
  api_hash: abc
  accounts:
    - {name: main, session_file: main.session}
routing:
  telegram_to_sip:
    target: "sip:{phone|id}@pbx.example.org"
    rules:
      - {name: blocked, callers: ["@spammer_bot"], reject: true}
      - {name: vip, callers: ["@alice_example"], target: "sip:vip@pbx.example.org"}
`
	check := func(t *testing.T, src string, args ...string) (int, string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "tgsip.yaml")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"check-config", "--config", path}, args...), &out, &errb)
		return code, strings.ReplaceAll(errb.String(), path, "FILE")
	}
	code, errs := check(t, base)
	for _, want := range []string{
		`FILE:13:13: routing.telegram_to_sip.target: "sip:{phone|id}@pbx.example.org": calls from Telegram need sip.outbound.uri`,
		`FILE:16:58: routing.telegram_to_sip.rules[1].target: "sip:vip@pbx.example.org": calls from Telegram need sip.outbound.uri`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if code != 1 || strings.Count(errs, "need sip.outbound.uri") != 2 {
		t.Errorf("exit %d (want 1), want two problems:\n%s", code, errs)
	}

	withURI := strings.Replace(base, "  rtp_ports:", "  outbound: {uri: \"sip:pbx.example.org:5060\"}\n  rtp_ports:", 1)
	if code, errs := check(t, withURI); code != 0 {
		t.Errorf("with sip.outbound.uri: exit %d\n%s", code, errs)
	}
	demo := strings.Replace(base, "telegram:\n  server: {address: \"127.0.0.1:4430\", dc: 2, public_key_file: tg.pem}\n  api_id: 1\n  api_hash: abc\n  accounts:\n    - {name: main, session_file: main.session}\n", "", 1)
	if code, errs := check(t, demo+"demo: {inbound_to: \"sip:2000@127.0.0.1:5070\"}\n", "--demo"); code != 0 {
		t.Errorf("demo with inbound_to: exit %d\n%s", code, errs)
	}
	if code, errs := check(t, demo, "--demo"); code != 1 || !strings.Contains(errs, "need sip.outbound.uri") {
		t.Errorf("demo without inbound_to: exit %d\n%s", code, errs)
	}
}
