package tlschema

import (
	"bytes"
	"encoding/binary"
	"testing"
)

const oldSchema = `
boolFalse#bc799737 = Bool;
boolTrue#997275b5 = Bool;
user#00000001 flags:# self:flags.0?true id:int name:flags.1?string = User;
userEmpty#00000003 id:int = User;
peerSettings#00000005 flags:# = PeerSettings;
wrap#00000010 u:User users:Vector<User> ok:Bool = Wrap;
---functions---
users.get#00000020 id:int = User;
`

const newSchema = `
boolFalse#bc799737 = Bool;
boolTrue#997275b5 = Bool;
user#00000002 flags:# flags2:# bot:flags2.3?true self:flags.2?true id:long name:flags.1?string extra:int settings:PeerSettings = User;
userEmpty#00000004 id:long = User;
peerSettings#00000006 flags:# = PeerSettings;
wrap#00000010 u:User users:Vector<User> ok:Bool = Wrap;
---functions---
users.get#00000021 id:long = User;
`

type enc struct{ b []byte }

func (e *enc) u32(v uint32) *enc { e.b = binary.LittleEndian.AppendUint32(e.b, v); return e }
func (e *enc) u64(v uint64) *enc { e.b = binary.LittleEndian.AppendUint64(e.b, v); return e }
func (e *enc) str(s string) *enc {
	e.b = append(e.b, byte(len(s)))
	e.b = append(e.b, s...)
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
	return e
}

func schemas(t *testing.T) (*Schema, *Schema) {
	t.Helper()
	o, err := Parse(1, oldSchema)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Parse(2, newSchema)
	if err != nil {
		t.Fatal(err)
	}
	return o, n
}

func TestTranscodeNewToOld(t *testing.T) {
	o, n := schemas(t)
	tr := &Translator{From: n, To: o}
	// new user: flags = self(bit 2)|name(bit 1), flags2 = bot(bit 3), id 7, name "al", extra 9, settings
	user := new(enc).u32(2).u32(1<<2 | 1<<1).u32(1 << 3).u64(7).str("al").u32(9).u32(6).u32(0).b
	in := new(enc).u32(0x10).b
	in = append(in, user...)
	in = append(in, new(enc).u32(vectorID).u32(1).u32(4).u64(5).u32(boolTrueID).b...)
	got, name, err := tr.Transcode(in)
	if err != nil || name != "wrap" {
		t.Fatalf("%s: %v", name, err)
	}
	// old user: flags = self(bit 0)|name(bit 1), id as int; userEmpty with int id.
	want := new(enc).u32(0x10).u32(1).u32(1 | 1<<1).u32(7).str("al").
		u32(vectorID).u32(1).u32(3).u32(5).u32(boolTrueID).b
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
}

func TestTranscodeOldToNew(t *testing.T) {
	o, n := schemas(t)
	tr := &Translator{From: o, To: n}
	got, name, err := tr.Transcode(new(enc).u32(0x20).u32(0xffffffff).b)
	if err != nil || name != "users.get" {
		t.Fatalf("%s: %v", name, err)
	}
	if want := new(enc).u32(0x21).u64(^uint64(0)).b; !bytes.Equal(got, want) {
		t.Fatalf("got %x want %x (int -1 widens to long -1)", got, want)
	}
	// Absent required fields take zero values, a boxed one its default
	// constructor.
	got, _, err = tr.Transcode(new(enc).u32(1).u32(0).u32(3).b)
	if err != nil {
		t.Fatal(err)
	}
	if want := new(enc).u32(2).u32(0).u32(0).u64(3).u32(0).u32(6).u32(0).b; !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
}

func TestTranscodeRefuses(t *testing.T) {
	o, n := schemas(t)
	tr := &Translator{From: n, To: o}
	for name, in := range map[string][]byte{
		"unknown id":     new(enc).u32(0x99).b,
		"short":          new(enc).u32(2).u32(0).b,
		"trailing":       new(enc).u32(4).u64(1).u32(0).b,
		"long overflow":  new(enc).u32(4).u64(1 << 40).b,
		"bad bool":       new(enc).u32(0x10).u32(4).u64(1).u32(vectorID).u32(0).u32(5).b,
		"huge vector":    new(enc).u32(0x10).u32(4).u64(1).u32(vectorID).u32(1 << 30).b,
		"string 255":     append(new(enc).u32(2).u32(2).u32(0).u64(1).b, 255, 0, 0, 0),
		"not vector":     new(enc).u32(0x10).u32(4).u64(1).u32(7).b,
		"empty":          nil,
		"vector garbage": new(enc).u32(vectorID).u32(1).u32(0x77).b,
	} {
		if _, _, err := tr.Transcode(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzTranscode(f *testing.F) {
	o, n := schemas(&testing.T{})
	f.Add(new(enc).u32(0x10).u32(4).u64(1).u32(vectorID).u32(0).u32(boolTrueID).b)
	f.Add(new(enc).u32(2).u32(6).u32(8).u64(7).str("al").u32(9).u32(6).u32(0).b)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, tr := range []*Translator{{From: n, To: o}, {From: o, To: n}} {
			out, _, err := tr.Transcode(in)
			if err != nil {
				continue
			}
			// What was translated translates back without error.
			back := &Translator{From: tr.To, To: tr.From}
			if _, _, err := back.Transcode(out); err != nil {
				t.Fatalf("%x -> %x does not translate back: %v", in, out, err)
			}
		}
	})
}
