package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocumentedSections: the YAML examples of docs/sip-leg.md,
// docs/routing.md and docs/accounts.md are sections of this file format,
// so each reads strictly and checks out when put under its key.
func TestDocumentedSections(t *testing.T) {
	for _, tc := range []struct {
		doc, key string
		opts     Options
		// with is the rest of the file the section's cross-checks need.
		with string
	}{
		{"sip-leg.md", "sip", Options{Demo: true}, ""},
		// Its telegram_to_sip targets need sip.outbound.uri.
		{"routing.md", "routing", Options{Demo: true}, "sip:\n  outbound: {uri: \"sip:pbx.example.com\"}\n"},
		{"accounts.md", "", Options{TelegramOnly: true}, ""},
	} {
		raw, err := os.ReadFile("../../docs/" + tc.doc)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(raw), "```yaml\n")
		block, _, closed := strings.Cut(rest, "```")
		if !ok || !closed {
			t.Fatalf("no yaml block in docs/%s", tc.doc)
		}
		if tc.key != "" {
			block = tc.key + ":\n  " + strings.ReplaceAll(strings.TrimSuffix(block, "\n"), "\n", "\n  ") + "\n"
		}
		block += tc.with
		tc.opts.Getenv = noEnv
		if _, err := Parse([]byte(block), tc.doc, tc.opts); err != nil {
			t.Errorf("docs/%s:\n%v", tc.doc, err)
		}
	}
}
