package sip

import (
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestDocumentedConfig keeps docs/sip-leg.md honest: its example
// configuration decodes strictly into Config and validates.
func TestDocumentedConfig(t *testing.T) {
	doc, err := os.ReadFile("../docs/sip-leg.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("no yaml block in docs/sip-leg.md")
	}
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(block), &c, yaml.DisallowUnknownField(), yaml.Strict()); err != nil {
		t.Fatal(yaml.FormatError(err, false, true))
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 3 || len(c.Trunks) != 1 || c.Trunks[0].SRTP == nil || !c.Trunks[0].SymmetricRTP || c.Outbound.URI == "" {
		t.Errorf("example decoded incompletely: %+v", c)
	}
}
