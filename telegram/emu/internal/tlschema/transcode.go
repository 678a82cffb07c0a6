package tlschema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Well-known ids of the TL core (core.telegram.org/mtproto/serialize).
const (
	vectorID    uint32 = 0x1cb5c415
	boolTrueID  uint32 = 0x997275b5
	boolFalseID uint32 = 0xbc799737
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 64

// maxVector bounds a vector's declared length.
const maxVector = 1 << 16

// ErrUnknownConstructor is wrapped by Transcode errors about a constructor
// one of the schemas does not list.
var ErrUnknownConstructor = errors.New("constructor not in schema")

// Translator re-encodes values from schema From to schema To. Constructors
// present in To under the same name are written with To's id and field
// set: fields To lacks are dropped, fields From lacks take their zero
// value (conditional ones stay unset), flags are recomputed.
type Translator struct {
	From, To *Schema
	// Defaults names, per boxed type, the constructor written when To
	// requires a field of that type that From does not have. Without an
	// entry the type's first constructor without required fields is used.
	Defaults map[string]string
}

// Transcode re-encodes one boxed value (an object or a function call,
// starting with its constructor id) and returns the bytes in To's schema
// and the name of its top constructor. Trailing bytes are an error.
func (t *Translator) Transcode(in []byte) ([]byte, string, error) {
	r := &reader{b: in}
	if len(in) >= 4 && binary.LittleEndian.Uint32(in) == vectorID {
		// A vector result (users.getUsers: Vector<User>): its elements
		// are boxed objects.
		out, err := t.field(r, "Vector<Object>", "Vector<Object>", 0)
		if err == nil && len(r.b) != 0 {
			err = fmt.Errorf("vector: %d trailing bytes", len(r.b))
		}
		return out, "vector", err
	}
	id, err := r.uint32()
	if err != nil {
		return nil, "", err
	}
	if (id == boolTrueID || id == boolFalseID) && len(in) == 4 {
		return in, "Bool", nil
	}
	src, ok := t.From.ByID(id)
	if !ok {
		return nil, "", fmt.Errorf("%w: %08x of layer %d", ErrUnknownConstructor, id, t.From.Layer)
	}
	var out []byte
	if out, err = t.object(r, out, src, true, 0); err != nil {
		return nil, src.Name, err
	}
	if len(r.b) != 0 {
		return nil, src.Name, fmt.Errorf("%s: %d trailing bytes", src.Name, len(r.b))
	}
	return out, src.Name, nil
}

// value is one decoded field, already re-encoded for To.
type value struct {
	set bool
	raw []byte
}

// object re-encodes the fields of src (its id already read) as To's
// constructor of the same name.
func (t *Translator) object(r *reader, out []byte, src *Constructor, boxed bool, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	dst, ok := t.To.ByName(src.Name)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no form in layer %d", ErrUnknownConstructor, src.Name, t.To.Layer)
	}
	flags := map[string]uint32{}
	vals := make(map[string]value, len(src.Fields))
	for _, f := range src.Fields {
		if f.FlagField != "" && flags[f.FlagField]&(1<<f.FlagBit) == 0 {
			continue
		}
		if f.Type == "#" {
			v, err := r.uint32()
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", src.Name, f.Name, err)
			}
			flags[f.Name] = v
			continue
		}
		if f.Type == "true" {
			vals[f.Name] = value{set: true}
			continue
		}
		want := f.Type
		if df, ok := dst.field(f.Name); ok {
			want = df.Type
		}
		raw, err := t.field(r, f.Type, want, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", src.Name, f.Name, err)
		}
		vals[f.Name] = value{set: true, raw: raw}
	}

	outFlags := map[string]uint32{}
	for _, f := range dst.Fields {
		if f.FlagField != "" && vals[f.Name].set {
			outFlags[f.FlagField] |= 1 << f.FlagBit
		}
	}
	if boxed {
		out = binary.LittleEndian.AppendUint32(out, dst.ID)
	}
	for _, f := range dst.Fields {
		switch {
		case f.Type == "#":
			out = binary.LittleEndian.AppendUint32(out, outFlags[f.Name])
		case f.FlagField != "":
			if v := vals[f.Name]; v.set && f.Type != "true" {
				out = append(out, v.raw...)
			}
		default:
			if v := vals[f.Name]; v.set {
				out = append(out, v.raw...)
				continue
			}
			def, err := t.zero(f.Type, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s.%s (absent in layer %d): %w", dst.Name, f.Name, t.From.Layer, err)
			}
			out = append(out, def...)
		}
	}
	return out, nil
}

func (c *Constructor) field(name string) (Field, bool) {
	for _, f := range c.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// field reads one value of type typ and writes it as type want.
func (t *Translator) field(r *reader, typ, want string, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	if elem, boxed, ok := vectorElem(typ); ok {
		wantElem := elem
		wantBoxed := boxed
		if we, wb, ok := vectorElem(want); ok {
			wantElem, wantBoxed = we, wb
		}
		if boxed {
			id, err := r.uint32()
			if err != nil {
				return nil, err
			}
			if id != vectorID {
				return nil, fmt.Errorf("want vector, got %08x", id)
			}
		}
		n, err := r.uint32()
		if err != nil {
			return nil, err
		}
		if n > maxVector {
			return nil, fmt.Errorf("vector of %d elements", n)
		}
		var out []byte
		if wantBoxed {
			out = binary.LittleEndian.AppendUint32(out, vectorID)
		}
		out = binary.LittleEndian.AppendUint32(out, n)
		for i := uint32(0); i < n; i++ {
			v, err := t.field(r, elem, wantElem, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, v...)
		}
		return out, nil
	}
	switch typ {
	case "int":
		b, err := r.take(4)
		if err != nil {
			return nil, err
		}
		if want == "long" {
			return binary.LittleEndian.AppendUint64(nil, uint64(int64(int32(binary.LittleEndian.Uint32(b))))), nil
		}
		return b, nil
	case "long":
		b, err := r.take(8)
		if err != nil {
			return nil, err
		}
		if want == "int" {
			v := int64(binary.LittleEndian.Uint64(b))
			if v != int64(int32(v)) {
				return nil, fmt.Errorf("long %d does not fit the int of layer %d", v, t.To.Layer)
			}
			return binary.LittleEndian.AppendUint32(nil, uint32(v)), nil
		}
		return b, nil
	case "double":
		return r.take(8)
	case "int128":
		return r.take(16)
	case "int256":
		return r.take(32)
	case "string", "bytes":
		return r.bytes()
	case "Bool":
		b, err := r.take(4)
		if err != nil {
			return nil, err
		}
		if id := binary.LittleEndian.Uint32(b); id != boolTrueID && id != boolFalseID {
			return nil, fmt.Errorf("want Bool, got %08x", id)
		}
		return b, nil
	}
	bare := strings.TrimPrefix(typ, "%")
	if c, ok := t.From.ByName(bare); ok && !c.Function {
		// A bare constructor type (name starts lowercase).
		return t.object(r, nil, c, false, depth)
	}
	id, err := r.uint32()
	if err != nil {
		return nil, err
	}
	c, ok := t.From.ByID(id)
	if !ok {
		return nil, fmt.Errorf("%w: %08x (a %s) of layer %d", ErrUnknownConstructor, id, typ, t.From.Layer)
	}
	return t.object(r, nil, c, true, depth)
}

// zero is the encoding of an absent required field of type typ in To.
func (t *Translator) zero(typ string, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	if _, boxed, ok := vectorElem(typ); ok {
		if boxed {
			return binary.LittleEndian.AppendUint32(nil, vectorID), nil
		}
		return make([]byte, 4), nil
	}
	switch typ {
	case "int", "string", "bytes":
		return make([]byte, 4), nil
	case "long", "double":
		return make([]byte, 8), nil
	case "int128":
		return make([]byte, 16), nil
	case "int256":
		return make([]byte, 32), nil
	case "Bool":
		return binary.LittleEndian.AppendUint32(nil, boolFalseID), nil
	}
	c := t.defaultOf(typ)
	if c == nil {
		return nil, fmt.Errorf("no default constructor for %s in layer %d", typ, t.To.Layer)
	}
	out := binary.LittleEndian.AppendUint32(nil, c.ID)
	for _, f := range c.Fields {
		switch {
		case f.Type == "#":
			out = append(out, 0, 0, 0, 0)
		case f.FlagField != "":
		default:
			v, err := t.zero(f.Type, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v...)
		}
	}
	return out, nil
}

// defaultOf picks the constructor written for an absent field of type typ.
func (t *Translator) defaultOf(typ string) *Constructor {
	if name, ok := t.Defaults[typ]; ok {
		c, _ := t.To.ByName(name)
		return c
	}
	for _, c := range t.To.OfType(typ) {
		required := false
		for _, f := range c.Fields {
			if f.FlagField == "" && f.Type != "#" {
				required = true
				break
			}
		}
		if !required {
			return c
		}
	}
	return nil
}

// reader consumes a TL byte stream.
type reader struct{ b []byte }

var errShort = errors.New("unexpected end of data")

func (r *reader) take(n int) ([]byte, error) {
	if len(r.b) < n {
		return nil, errShort
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v, nil
}

func (r *reader) uint32() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// bytes reads a TL string with its length prefix and padding and returns
// the whole encoding.
func (r *reader) bytes() ([]byte, error) {
	if len(r.b) < 1 {
		return nil, errShort
	}
	n, head := int(r.b[0]), 1
	if n == 254 {
		if len(r.b) < 4 {
			return nil, errShort
		}
		n = int(r.b[1]) | int(r.b[2])<<8 | int(r.b[3])<<16
		head = 4
	} else if n == 255 {
		return nil, errors.New("invalid string length prefix 255")
	}
	total := head + n
	total += (4 - total%4) % 4
	return r.take(total)
}
