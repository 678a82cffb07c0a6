package config

import (
	"encoding"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/tgsip/tgsip/sip"
)

// Options change how a file is read.
type Options struct {
	// Demo reads the file for `tgsip demo`: the Telegram side is the
	// in-process emulator, so the telegram section may be left out, and a
	// file without sip.listen listens on demo.sip_listen.
	Demo bool
	// TelegramOnly checks only the telegram section (the whole file is
	// still read strictly): `tgsip login` and `tgsip accounts` need no
	// more.
	TelegramOnly bool
	// Getenv reads TGSIP_API_ID / TGSIP_API_HASH; nil means os.Getenv.
	Getenv func(string) string
}

// Load reads, completes and validates a configuration file. Every problem
// is reported, each with its line and column, in an *Error.
func Load(path string, opts Options) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(raw, path, opts)
}

// Parse is Load for a file already read; name is used in messages and its
// folder anchors relative paths.
func Parse(raw []byte, name string, opts Options) (*Config, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	file, err := parser.ParseBytes(raw, 0)
	if err != nil {
		return nil, &Error{File: name, Problems: []Problem{yamlProblem(err)}}
	}
	c := Default()
	if err := decode(file, &c); err != nil {
		p := yamlProblem(err)
		if p.Line == 0 {
			// Errors from a value's own parser (a duration, an IP
			// address, an SRTP policy) come without a place: find the
			// value that fails.
			if q, ok := locateBadValue(file, reflect.TypeOf(c)); ok {
				p = q
			}
		}
		return nil, &Error{File: name, Problems: []Problem{p}}
	}
	if opts.Demo {
		c.applyDemo()
	}
	if !opts.Demo {
		c.completeAccounts(filepath.Dir(name))
	}
	probs := c.envProblems(opts)
	probs = append(probs, c.problems(opts)...)
	if len(probs) > 0 {
		for i := range probs {
			probs[i].locate(file)
		}
		// In file order; problems with no place (a section left out)
		// last.
		line := func(p problem) int {
			if p.Line == 0 {
				return math.MaxInt
			}
			return p.Line
		}
		sort.SliceStable(probs, func(i, j int) bool { return line(probs[i]) < line(probs[j]) })
		return nil, &Error{File: name, Problems: problemList(probs)}
	}
	return &c, nil
}

// decode fills c from the file's first document strictly. A key written
// with no value ("log:" with its lines commented out) keeps its default,
// as a key left out does.
func decode(f *ast.File, c *Config) (err error) {
	defer func() {
		// goccy/go-yaml v1.19.2 panics on a few malformed inputs (a bare
		// "!" tag where a list goes; FuzzParse found it). A file is the
		// admin's, not an attacker's, but it still deserves an answer.
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML cannot be read (%v): check the file's indentation and tags", r)
		}
	}()
	if len(f.Docs) > 1 {
		return fmt.Errorf("the file holds %d YAML documents (---): write one", len(f.Docs))
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil
	}
	body := pruneEmpty(f.Docs[0].Body, reflect.TypeOf(*c))
	if _, null := body.(*ast.NullNode); null {
		return nil
	}
	return yaml.NodeToValue(body, c, yaml.DisallowUnknownField(), yaml.Strict())
}

// pruneEmpty drops the keys of struct fields written without a value, so
// that they keep their defaults; unknown keys stay for the decoder to
// report.
func pruneEmpty(n ast.Node, t reflect.Type) ast.Node {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(netip.AddrPort{}) || t == reflect.TypeOf(netip.Addr{}) || t == reflect.TypeOf(netip.Prefix{}) {
			return n
		}
		pairs := mappingPairs(n)
		kept := pairs[:0:0]
		for _, kv := range pairs {
			f, known := fieldByTag(t, keyString(kv.Key))
			if known {
				if _, null := kv.Value.(*ast.NullNode); null {
					continue
				}
				kv.Value = pruneEmpty(kv.Value, f.Type)
			}
			kept = append(kept, kv)
		}
		switch m := n.(type) {
		case *ast.MappingNode:
			m.Values = kept
		case *ast.MappingValueNode:
			if len(kept) == 0 {
				return ast.Mapping(m.GetToken(), true)
			}
		}
	case reflect.Slice:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for i, v := range seq.Values {
				seq.Values[i] = pruneEmpty(v, t.Elem())
			}
		}
	}
	return n
}

// applyDemo fills what `tgsip demo` provides when the file does not: SIP
// listeners on demo.sip_listen and an RTP port range.
func (c *Config) applyDemo() {
	if len(c.SIP.Listen) == 0 && c.Demo.SIPListen.IsValid() {
		c.SIP.Listen = []sip.ListenConfig{
			{Transport: sip.UDP, Addr: c.Demo.SIPListen},
			{Transport: sip.TCP, Addr: c.Demo.SIPListen},
		}
	}
	if c.SIP.RTPPorts == (sip.PortRange{}) {
		c.SIP.RTPPorts = sip.PortRange{Min: 40000, Max: 40999}
	}
}

// completeAccounts gives every account what it leaves to the telegram
// section (server, API credentials) and anchors relative paths at dir.
// The environment is read later, in envProblems, so that Validate alone
// does not depend on it.
func (c *Config) completeAccounts(dir string) {
	t := &c.Telegram
	if t.Server.PublicKeyFile != "" && !filepath.IsAbs(t.Server.PublicKeyFile) {
		t.Server.PublicKeyFile = filepath.Join(dir, t.Server.PublicKeyFile)
	}
	for i := range t.Accounts {
		a := &t.Accounts[i]
		if a.DCAddress == "" {
			a.DCAddress = t.Server.Address
		}
		if a.DC == 0 {
			a.DC = t.Server.DC
		}
		if a.PublicKeyFile == "" {
			a.PublicKeyFile = t.Server.PublicKeyFile
		} else if !filepath.IsAbs(a.PublicKeyFile) {
			a.PublicKeyFile = filepath.Join(dir, a.PublicKeyFile)
		}
		if a.SessionFile != "" && !filepath.IsAbs(a.SessionFile) {
			a.SessionFile = filepath.Join(dir, a.SessionFile)
		}
		if a.APIID == 0 {
			a.APIID = t.APIID
		}
		if a.APIHash == "" {
			a.APIHash = t.APIHash
		}
	}
}

// envProblems takes API credentials from the environment for accounts
// that still lack them.
func (c *Config) envProblems(opts Options) []problem {
	if opts.Demo {
		return nil
	}
	var out []problem
	for i := range c.Telegram.Accounts {
		a, err := c.Telegram.Accounts[i].WithEnv(opts.Getenv)
		if err != nil {
			out = append(out, problem{path: fmt.Sprintf("telegram.accounts[%d]", i), msg: err.Error()})
			continue
		}
		c.Telegram.Accounts[i] = a
	}
	return out
}

// locateBadValue walks the file along the struct tree and tries each
// scalar whose Go type parses itself (durations, addresses, policies),
// reporting the first that fails with its place.
func locateBadValue(f *ast.File, t reflect.Type) (Problem, bool) {
	for _, doc := range f.Docs {
		if p, ok := walkValue(doc.Body, t); ok {
			return p, true
		}
	}
	return Problem{}, false
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	textType     = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func walkValue(n ast.Node, t reflect.Type) (Problem, bool) {
	if n == nil {
		return Problem{}, false
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if tag, ok := n.(*ast.TagNode); ok {
		n = tag.Value
	}
	if t == durationType || reflect.PointerTo(t).Implements(textType) {
		s, ok := n.(ast.ScalarNode)
		if !ok {
			pos := n.GetToken().Position
			return Problem{Line: pos.Line, Column: pos.Column, Msg: "write a single value here, not a list or mapping"}, true
		}
		text := fmt.Sprint(s.GetValue())
		var err error
		if t == durationType {
			if _, isInt := s.GetValue().(uint64); !isInt {
				_, err = time.ParseDuration(text)
			}
		} else {
			err = reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text))
		}
		if err != nil {
			pos := n.GetToken().Position
			return Problem{Line: pos.Line, Column: pos.Column, Msg: valueMessage(t, text, err)}, true
		}
		return Problem{}, false
	}
	switch t.Kind() {
	case reflect.Struct:
		for _, kv := range mappingPairs(n) {
			if f, ok := fieldByTag(t, keyString(kv.Key)); ok {
				if p, bad := walkValue(kv.Value, f.Type); bad {
					return p, true
				}
			}
		}
	case reflect.Slice:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for _, v := range seq.Values {
				if p, bad := walkValue(v, t.Elem()); bad {
					return p, true
				}
			}
		}
	case reflect.Map:
		for _, kv := range mappingPairs(n) {
			if p, bad := walkValue(kv.Value, t.Elem()); bad {
				return p, true
			}
		}
	}
	return Problem{}, false
}

// mappingPairs lists a mapping node's key/value pairs (a one-pair mapping
// is a bare MappingValueNode in the AST).
func mappingPairs(n ast.Node) []*ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	case *ast.TagNode:
		return mappingPairs(m.Value)
	}
	return nil
}

func keyString(k ast.MapKeyNode) string {
	if s, ok := k.(ast.ScalarNode); ok {
		return fmt.Sprint(s.GetValue())
	}
	return k.String()
}

// fieldByTag finds a struct field by its yaml name, looking into
// embedded structs as the decoder does.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
