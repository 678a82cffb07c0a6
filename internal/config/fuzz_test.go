package config

import (
	"os"
	"testing"
)

// FuzzParse: whatever the file holds, Parse answers with a config or an
// *Error, never a panic, and every placed problem is inside the file.
func FuzzParse(f *testing.F) {
	if raw, err := os.ReadFile(examplePath); err == nil {
		f.Add(raw)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("log: {level: loud}\nsip: {listen: [{addr: [1]}]}\n"))
	f.Add([]byte("routing:\n  sip_to_telegram:\n    rules:\n      - {match: '('}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw, "f.yaml", Options{Getenv: noEnv})
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		if ce, ok := err.(*Error); ok {
			lines := yamlLines(raw)
			for _, p := range ce.Problems {
				if p.Line < 0 || p.Line > lines || p.Msg == "" {
					t.Fatalf("problem %+v outside a %d-line file", p, lines)
				}
			}
		}
	})
}

// yamlLines counts the lines of raw as YAML does (YAML 1.2 §5.4): a line
// ends at LF, CR LF or a lone CR, so a file saved with CR line ends has as
// many lines as its CRs and Parse places its problems on them.
func yamlLines(raw []byte) int {
	lines := 1
	for i, b := range raw {
		if b == '\n' || b == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			lines++
		}
	}
	return lines
}
