// Package archtest checks the import rules of ARCHITECTURE.md ("Who imports
// whom"): sip/... and telegram/... never import each other, b2bua or
// rtpbridge; rtpbridge imports neither leg nor b2bua; telegram/wire imports
// nothing of ours. It reads the real build graph with `go list -deps -json`,
// so a rule broken through any chain of packages is caught.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const module = "github.com/tgsip/tgsip"

// pkg is the part of `go list -json` output the rules read.
type pkg struct {
	ImportPath string
	Deps       []string
}

// rule forbids packages at or below `from` (a path relative to the module)
// to depend, directly or not, on any package at or below one of `never`
// ("" is the whole module). Only build dependencies count, not those of
// tests (go list -deps without -test).
type rule struct {
	from  string
	never []string
}

var rules = []rule{
	{"sip", []string{"telegram", "b2bua", "rtpbridge"}},
	{"telegram", []string{"sip", "b2bua", "rtpbridge"}},
	{"rtpbridge", []string{"sip", "telegram", "b2bua"}},
	// "" is the whole module: telegram/wire imports nothing of ours.
	{"telegram/wire", []string{""}},
}

// under reports whether import path p is the module package rel or below it.
func under(p, rel string) bool {
	root := module
	if rel != "" {
		root += "/" + rel
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// violations lists every dependency the rules forbid, one line each.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !under(p.ImportPath, r.from) {
				continue
			}
			for _, d := range p.Deps {
				for _, n := range r.never {
					if under(d, n) && !under(d, r.from) {
						out = append(out, fmt.Sprintf("%s imports %s (ARCHITECTURE.md: %s never imports %s)", p.ImportPath, d, r.from, orModule(n)))
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func orModule(rel string) string {
	if rel == "" {
		return "anything of ours"
	}
	return rel
}

// goList runs `go list -deps -json` on patterns and decodes the stream.
func goList(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-deps", "-json=ImportPath,Deps"}, patterns...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportRules checks the real build graph of the module.
func TestImportRules(t *testing.T) {
	var patterns []string
	for _, r := range rules {
		patterns = append(patterns, module+"/"+r.from+"/...")
	}
	pkgs := goList(t, patterns...)
	seen := map[string]bool{}
	for _, p := range pkgs {
		for _, r := range rules {
			if under(p.ImportPath, r.from) {
				seen[r.from] = true
			}
		}
	}
	// The check means nothing if go list found none of a rule's packages.
	for _, r := range rules {
		if !seen[r.from] {
			t.Errorf("go list returned no package under %s", r.from)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestViolationsDetected feeds violations a graph that breaks each rule,
// directly and through another package, and one that keeps them.
func TestViolationsDetected(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	bad := []pkg{
		{m("sip"), []string{"net", m("internal/config"), m("telegram/tgcall")}},
		{m("sip/sdp"), []string{m("rtpbridge/codec")}},
		{m("telegram/tgcall"), []string{m("telegram/media"), m("b2bua")}},
		{m("rtpbridge"), []string{m("sip/sdp")}},
		{m("telegram/wire"), []string{"crypto/aes", m("internal/audiotest")}},
	}
	got := violations(bad)
	want := []string{
		m("rtpbridge") + " imports " + m("sip/sdp"),
		m("sip") + " imports " + m("telegram/tgcall"),
		m("sip/sdp") + " imports " + m("rtpbridge/codec"),
		m("telegram/tgcall") + " imports " + m("b2bua"),
		m("telegram/wire") + " imports " + m("internal/audiotest"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+" ") {
			t.Errorf("violation %d = %q, want %q…", i, got[i], want[i])
		}
	}
	good := []pkg{
		{m("sip"), []string{"net", m("internal/config"), m("sip/sdp")}},
		{m("telegram/tgcall"), []string{m("telegram/wire"), m("telegram/media"), m("internal/config")}},
		{m("rtpbridge"), []string{m("rtpbridge/codec")}},
		{m("telegram/wire"), []string{"crypto/aes"}},
		{m("b2bua"), []string{m("sip"), m("telegram/tgcall"), m("rtpbridge")}},
		{m("sipx"), []string{m("telegram/tgcall")}}, // not under sip/
	}
	if v := violations(good); len(v) != 0 {
		t.Errorf("rules flag a clean graph:\n%s", strings.Join(v, "\n"))
	}
}
