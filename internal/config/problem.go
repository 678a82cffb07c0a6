package config

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
)

// Problem is one mistake in a configuration file, where it is.
type Problem struct {
	// Line and Column are 1-based; 0 when the mistake has no place in the
	// file (a required section left out is reported at its parent).
	Line, Column int
	// Msg says what is wrong and what to write instead.
	Msg string
}

// Error lists every problem found in a configuration file.
type Error struct {
	// File is the file's name as given to Load.
	File     string
	Problems []Problem
}

// Error prints one problem a line: "file:line:column: message".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
		}
		b.WriteString(": ")
		b.WriteString(p.Msg)
	}
	return b.String()
}

// yamlProblem turns a decoder error into a Problem, with the place when
// the decoder knows it.
func yamlProblem(err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		return Problem{Line: pos.Line, Column: pos.Column, Msg: typeMessage(ye.GetMessage())}
	}
	return Problem{Msg: err.Error()}
}

var (
	typeMismatch = regexp.MustCompile(`^cannot unmarshal (.+) into Go (?:struct field \S+|value) of type (\S+)$`)
	nodeMismatch = regexp.MustCompile(`^(\w+) was used where (\w+) is expected$`)
	overflow     = regexp.MustCompile(`^cannot unmarshal (\S+) into Go value of type (\S+) \( overflow \)$`)
)

var ranges = map[string]string{
	"uint16": "0 to 65535", "uint8": "0 to 255", "int32": "a 32-bit number",
	"uint32": "0 to 4294967295", "int": "a 64-bit number", "int64": "a 64-bit number",
}

// typeMessage rewrites the decoder's "cannot unmarshal []interface {}
// into Go struct field Config.SIP of type int" in the admin's words.
func typeMessage(msg string) string {
	if m := overflow.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is out of range here (%s)", m[1], ranges[m[2]])
	}
	if m := typeMismatch.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s cannot go here: write %s", yamlKind(m[1]), yamlKind(m[2]))
	}
	if m := nodeMismatch.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s cannot go here: write %s", yamlKind(m[1]), yamlKind(m[2]))
	}
	return msg
}

// yamlKind names a Go type, or a YAML node type, as the kind of value an
// admin writes.
func yamlKind(t string) string {
	switch {
	case t == "time.Duration":
		return "a duration (e.g. 30s)"
	case strings.HasPrefix(t, "netip."):
		return "an address"
	case strings.HasPrefix(t, "[]"), t == "sequence":
		return "a list"
	case strings.HasPrefix(t, "map["), t == "mapping", strings.Contains(t, "."):
		return "a mapping (key: value lines)"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case t == "null":
		return "nothing"
	}
	return "a " + t
}

// valueMessage explains a value its type does not accept.
func valueMessage(t reflect.Type, text string, err error) string {
	switch t {
	case durationType:
		return fmt.Sprintf("%q is not a duration: write a number with a unit, e.g. 500ms, 30s, 5m, 1h", text)
	case reflect.TypeOf(netip.Addr{}):
		return fmt.Sprintf("%q is not an IP address", text)
	case reflect.TypeOf(netip.AddrPort{}):
		return fmt.Sprintf("%q is not an IP:port address (e.g. 0.0.0.0:5060, [::]:5060)", text)
	case reflect.TypeOf(netip.Prefix{}):
		return fmt.Sprintf("%q is not a network (e.g. 192.0.2.0/24 or 192.0.2.7/32)", text)
	}
	return err.Error()
}
