package config

import (
	"encoding"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

const examplePath = "../../config.example.yaml"

// TestExampleIsValid: config.example.yaml is read strictly and passes
// every check, for serve and for demo, as shipped.
func TestExampleIsValid(t *testing.T) {
	for _, demo := range []bool{false, true} {
		c, err := Load(examplePath, Options{Demo: demo, Getenv: noEnv})
		if err != nil {
			t.Fatalf("demo=%v: %v", demo, err)
		}
		if len(c.SIP.Trunks) == 0 || len(c.Telegram.Accounts) == 0 || len(c.Routing.SIPToTelegram.Rules) == 0 {
			t.Errorf("example decoded incompletely: %s", c.Summary())
		}
	}
}

// TestExampleIsComplete: every setting of the struct tree appears in
// config.example.yaml, so the example stays the full reference.
func TestExampleIsComplete(t *testing.T) {
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseBytes(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, d := range f.Docs {
		collectKeys(d.Body, "", have)
	}
	var want []string
	settingPaths(reflect.TypeOf(Config{}), "", &want)
	if len(want) < 100 {
		t.Fatalf("only %d settings found: the walk is broken", len(want))
	}
	for _, p := range want {
		if !have[p] {
			t.Errorf("config.example.yaml lacks %s", p)
		}
	}
	// And nothing in the example is outside the tree (the strict decode
	// catches it too; this names the path).
	for p := range have {
		if !slices.Contains(want, p) && !strings.Contains(p, "aliases.") {
			t.Errorf("config.example.yaml has %s, which is no setting", p)
		}
	}
}

// collectKeys records the path of every key in the file; list items are
// written [].
func collectKeys(n ast.Node, prefix string, out map[string]bool) {
	switch v := n.(type) {
	case *ast.TagNode:
		collectKeys(v.Value, prefix, out)
	case *ast.SequenceNode:
		for _, e := range v.Values {
			collectKeys(e, prefix+"[]", out)
		}
	default:
		for _, kv := range mappingPairs(n) {
			p := keyString(kv.Key)
			if prefix != "" {
				p = prefix + "." + p
			}
			out[p] = true
			collectKeys(kv.Value, p, out)
		}
	}
}

// settingPaths lists the path of every yaml field below t. Types that
// read themselves from a scalar (durations, addresses, policies) and maps
// are leaves.
func settingPaths(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(time.Duration(0)) || reflect.PointerTo(t).Implements(reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()) {
		return
	}
	switch t.Kind() {
	case reflect.Slice:
		settingPaths(t.Elem(), prefix+"[]", out)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			*out = append(*out, p)
			settingPaths(f.Type, p, out)
		}
	}
}
