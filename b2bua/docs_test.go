package b2bua

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func readRoutingDoc(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/routing.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

// TestDocumentedRouting keeps docs/routing.md honest: its example decodes
// strictly into Routing, validates, and routes as the page says.
func TestDocumentedRouting(t *testing.T) {
	_, rest, ok := strings.Cut(readRoutingDoc(t), "```yaml\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("no yaml block in docs/routing.md")
	}
	var r Routing
	if err := yaml.UnmarshalWithOptions([]byte(block), &r, yaml.DisallowUnknownField(), yaml.Strict()); err != nil {
		t.Fatal(yaml.FormatError(err, false, true))
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	sr, err := NewSIPRouter(r.SIPToTelegram)
	if err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]string{
		"echo":            "@echo_test_bot",
		"*7durov":         "@durov",
		"101":             "+4930555101",
		"9 030 1234567":   "+49301234567",
		"030 / 123 45-67": "+49301234567",
		"0049 30 1234567": "+49301234567",
	} {
		got, err := sr.Route(Called{RequestUser: user})
		if err != nil || got.Peer.String() != want {
			t.Errorf("documented route %q = %v, %v; want %s", user, got.Peer, err, want)
		}
	}
	tr, err := NewTelegramRouter(r.TelegramToSIP)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tr.Route("sales", Caller{ID: 7, Username: "bob_tg"}); err != nil || got.Target != "sips:sales@pbx.example.com;transport=tls" {
		t.Errorf("documented sales route: %+v, %v", got, err)
	}
	if _, err := tr.Route("sales", Caller{ID: 8}); err == nil {
		t.Error("documented sales reject did not reject")
	}
}

// TestDocumentedOutcomes checks the operator's status table against
// outcomeTable row by row.
func TestDocumentedOutcomes(t *testing.T) {
	lines := strings.Split(readRoutingDoc(t), "\n")
	for o := Outcome(0); o < numOutcomes; o++ {
		prefix := fmt.Sprintf("| `%s` |", o)
		var row string
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				row = l
			}
		}
		if row == "" {
			t.Errorf("docs/routing.md has no row for %s", o)
			continue
		}
		r := o.Reason()
		wantReason := fmt.Sprintf("`%s;cause=%d`", r.Protocol, r.Cause)
		if !strings.Contains(row, fmt.Sprintf("| %d |", o.SIPStatus())) || !strings.Contains(row, wantReason) {
			t.Errorf("docs row %q disagrees with the table: %d %s", row, o.SIPStatus(), wantReason)
		}
	}
}
