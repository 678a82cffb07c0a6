// Package tlschema parses TL schema lines (core.telegram.org/mtproto/TL)
// and re-encodes TL-serialized values from one API layer's schema to
// another's, matching constructors and fields by name.
//
// It serves the emulator's multi-layer support: the emulator speaks gotd's
// layer and translates what it sends to (and what it receives from) a
// client on another layer, with a table of the constructors that differ.
package tlschema

import (
	"fmt"
	"strconv"
	"strings"
)

// Field is one parameter of a constructor.
type Field struct {
	Name string
	// Type is the TL type as written: "int", "string", "Vector<User>",
	// "PhoneCallProtocol", "true", "#".
	Type string
	// FlagField and FlagBit are set for a conditional field
	// (name:flags.3?Type); FlagField is "" otherwise.
	FlagField string
	FlagBit   int
}

// Constructor is one TL combinator: a constructor or a function.
type Constructor struct {
	Name   string
	ID     uint32
	Fields []Field
	// Result is the type after '='.
	Result   string
	Function bool
}

// Schema is a set of constructors of one layer.
type Schema struct {
	Layer  int
	byID   map[uint32]*Constructor
	byName map[string]*Constructor
	// byType lists constructors (not functions) per result type.
	byType map[string][]*Constructor
}

// ByID returns the constructor with the given id.
func (s *Schema) ByID(id uint32) (*Constructor, bool) {
	c, ok := s.byID[id]
	return c, ok
}

// ByName returns the constructor with the given name.
func (s *Schema) ByName(name string) (*Constructor, bool) {
	c, ok := s.byName[name]
	return c, ok
}

// OfType lists the constructors of a boxed type.
func (s *Schema) OfType(t string) []*Constructor { return s.byType[t] }

// Constructors lists every constructor and function in no fixed order.
func (s *Schema) Constructors() []*Constructor {
	out := make([]*Constructor, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	return out
}

// Parse reads TL schema text: one combinator per line, "---functions---"
// and "---types---" switch sections, "//" comments and lines with type
// parameters ({X:Type}, the invoke wrappers) are skipped.
func Parse(layer int, text string) (*Schema, error) {
	s := &Schema{Layer: layer, byID: map[uint32]*Constructor{}, byName: map[string]*Constructor{}, byType: map[string][]*Constructor{}}
	functions := false
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if c := strings.Index(line, "//"); c >= 0 {
			line = strings.TrimSpace(line[:c])
		}
		switch {
		case line == "":
			continue
		case line == "---functions---":
			functions = true
			continue
		case line == "---types---":
			functions = false
			continue
		case strings.Contains(line, "{"), strings.Contains(line, " ? "):
			// Type parameters (the invoke wrappers) and the built-in
			// primitive declarations ("int ? = Int") are not data.
			continue
		}
		c, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("tlschema: line %d: %w", i+1, err)
		}
		if c == nil {
			continue
		}
		c.Function = functions
		s.Add(c)
	}
	return s, nil
}

// Add inserts c, replacing an earlier constructor of the same name or id.
func (s *Schema) Add(c *Constructor) {
	if old, ok := s.byName[c.Name]; ok {
		delete(s.byID, old.ID)
		list := s.byType[old.Result]
		for i, x := range list {
			if x == old {
				s.byType[old.Result] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	}
	if old, ok := s.byID[c.ID]; ok {
		delete(s.byName, old.Name)
	}
	s.byID[c.ID] = c
	s.byName[c.Name] = c
	if !c.Function {
		s.byType[c.Result] = append(s.byType[c.Result], c)
	}
}

// ParseLine parses one combinator, "name#id field:type ... = Result;". A
// line without an explicit id (the built-in vector) gives nil.
func ParseLine(line string) (*Constructor, error) {
	line = strings.TrimSuffix(strings.TrimSpace(line), ";")
	lhs, result, ok := strings.Cut(line, "=")
	if !ok {
		return nil, fmt.Errorf("no '=' in %q", line)
	}
	parts := strings.Fields(lhs)
	if len(parts) == 0 {
		return nil, fmt.Errorf("no name in %q", line)
	}
	name, hexID, ok := strings.Cut(parts[0], "#")
	if !ok {
		return nil, nil
	}
	id, err := strconv.ParseUint(hexID, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("id of %s: %w", name, err)
	}
	c := &Constructor{Name: name, ID: uint32(id), Result: strings.TrimSpace(result)}
	for _, p := range parts[1:] {
		fname, ftype, ok := strings.Cut(p, ":")
		if !ok {
			return nil, fmt.Errorf("%s: field %q", name, p)
		}
		f := Field{Name: fname, Type: ftype}
		if cond, t, ok := strings.Cut(ftype, "?"); ok {
			ff, bit, ok := strings.Cut(cond, ".")
			if !ok {
				return nil, fmt.Errorf("%s: condition %q", name, cond)
			}
			n, err := strconv.Atoi(bit)
			if err != nil || n < 0 || n > 31 {
				return nil, fmt.Errorf("%s: flag bit %q", name, bit)
			}
			f.Type, f.FlagField, f.FlagBit = t, ff, n
		}
		c.Fields = append(c.Fields, f)
	}
	return c, nil
}

// String writes c back as a schema line.
func (c *Constructor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s#%08x", c.Name, c.ID)
	for _, f := range c.Fields {
		b.WriteByte(' ')
		b.WriteString(f.Name)
		b.WriteByte(':')
		if f.FlagField != "" {
			fmt.Fprintf(&b, "%s.%d?", f.FlagField, f.FlagBit)
		}
		b.WriteString(f.Type)
	}
	b.WriteString(" = ")
	b.WriteString(c.Result)
	b.WriteByte(';')
	return b.String()
}

// vectorElem returns T for "Vector<T>" (boxed) or "vector<T>" (bare).
func vectorElem(t string) (elem string, boxed, ok bool) {
	switch {
	case strings.HasPrefix(t, "Vector<") && strings.HasSuffix(t, ">"):
		return t[7 : len(t)-1], true, true
	case strings.HasPrefix(t, "vector<") && strings.HasSuffix(t, ">"):
		return t[7 : len(t)-1], false, true
	}
	return "", false, false
}

// TypeRefs lists the boxed and bare object types a field type refers to
// (the element type of vectors), leaving out primitives.
func TypeRefs(t string) []string {
	if e, _, ok := vectorElem(t); ok {
		return TypeRefs(e)
	}
	t = strings.TrimPrefix(t, "%")
	if isPrimitive(t) {
		return nil
	}
	return []string{t}
}

func isPrimitive(t string) bool {
	switch t {
	case "int", "long", "double", "string", "bytes", "int128", "int256", "true", "#", "Bool":
		return true
	}
	return false
}
