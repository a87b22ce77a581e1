package ini

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// dump renders sections one per line, "[name]@line" followed by
// " key=value@line" for each entry, values quoted.
func dump(secs []*Section) []string {
	var out []string
	for _, s := range secs {
		out = append(out, fmt.Sprintf("[%s]@%d", s.Name, s.Line))
		for _, e := range s.Entries {
			out = append(out, fmt.Sprintf(" %s=%q@%d", e.Key, e.Value, e.Line))
		}
	}
	return out
}

func dumpErrors(errs []*Error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // dump of the sections
		errs []string
	}{
		{name: "empty", in: ""},
		{name: "comments and blanks", in: "# a\n  ; b\n\n\t\n"},
		{name: "sections and entries", in: "[a]\nk = v\n[B]\nKey: Value\n",
			want: []string{"[a]@1", ` k="v"@2`, "[B]@3", ` Key="Value"@4`}},
		{name: "first separator wins", in: "[s]\nk2: a:b:c\nurl = http://x:80/=\nt: a=b\n",
			want: []string{"[s]@1", ` k2="a:b:c"@2`, ` url="http://x:80/="@3`, ` t="a=b"@4`}},
		{name: "whitespace trimmed", in: "[ s ]\n  k  =  spaced value  \nempty =\n",
			want: []string{"[s]@1", ` k="spaced value"@2`, ` empty=""@3`}},
		{name: "byte order mark and CRLF", in: "\uFEFF[s]\r\nk = v\r\n",
			want: []string{"[s]@1", ` k="v"@2`}},
		{name: "inline comments", in: "[s]\na = v ; note\nb = v\t# note\nc = x#y\nd = x;y\ne = # all comment\nf =#not\n",
			want: []string{"[s]@1", ` a="v"@2`, ` b="v"@3`, ` c="x#y"@4`, ` d="x;y"@5`, ` e=""@6`, ` f="#not"@7`}},
		{name: "comment characters in quotes", in: "[s]\n" +
			`a = "x # y" ; note` + "\n" +
			`b = -n "a ;b" -m "c \" # d" # note` + "\n" +
			`c = "esc \\" # note` + "\n" +
			`d = "unterminated # kept` + "\n" +
			`e = back\" # note` + "\n",
			want: []string{"[s]@1", ` a="\"x # y\""@2`, ` b="-n \"a ;b\" -m \"c \\\" # d\""@3`,
				` c="\"esc \\\\\""@4`, ` d="\"unterminated # kept"@5`, ` e="back\\\" # note"@6`}},
		{name: "header comments", in: "[a] # c\nk=1\n[b];c\nk=2\n",
			want: []string{"[a]@1", ` k="1"@2`, "[b]@3", ` k="2"@4`}},
		{name: "repeats kept", in: "[a]\nk=1\nk=2\n[a]\nk=3\n",
			want: []string{"[a]@1", ` k="1"@2`, ` k="2"@3`, "[a]@4", ` k="3"@5`}},
		{name: "entries before any section", in: "# c\nk = v\n[a]\n",
			want: []string{"[]@2", ` k="v"@2`, "[a]@3"}},
		{name: "malformed header", in: "[a]\nx=0\n[b\nk = v\n[c] d\nj = w\n[d]\nl = u\n",
			want: []string{"[a]@1", ` x="0"@2`, "[]@4", ` k="v"@4`, "[]@6", ` j="w"@6`, "[d]@7", ` l="u"@8`},
			errs: []string{`f.cfg:3: malformed section header, want "[name]"`, `f.cfg:5: malformed section header, want "[name]"`}},
		{name: "empty section name", in: "[ ]\nk=v\n",
			want: []string{"[]@2", ` k="v"@2`},
			errs: []string{"f.cfg:1: empty section name"}},
		{name: "bad lines", in: "[s]\njust words\n= 3\n : 4\nok = 5\n",
			want: []string{"[s]@1", ` ok="5"@5`},
			errs: []string{`f.cfg:2: want "key = value" or "[section]"`, `f.cfg:3: missing key before "="`, `f.cfg:4: missing key before ":"`}},
		{name: "invalid UTF-8", in: "[s]\nk = \xff\nj = ok\n",
			want: []string{"[s]@1", ` j="ok"@3`},
			errs: []string{"f.cfg:2: line is not valid UTF-8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secs, errs := Parse("f.cfg", []byte(tc.in))
			if got := dump(secs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sections:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if got := dumpErrors(errs); !reflect.DeepEqual(got, tc.errs) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.errs, "\n"))
			}
		})
	}
}

// render writes sections back as INI text that Parse reads as the same
// sections, for a document Parse read without errors. It starts with a
// comment line so that a key beginning with U+FEFF is not taken for a byte
// order mark, and writes no spaces around '=' so that a value beginning with
// '#' or ';' stays a value.
func render(secs []*Section) []byte {
	var b bytes.Buffer
	b.WriteString("# rendered\n")
	for _, s := range secs {
		if s.Name != "" {
			fmt.Fprintf(&b, "[%s]\n", s.Name)
		}
		for _, e := range s.Entries {
			fmt.Fprintf(&b, "%s=%s\n", e.Key, e.Value)
		}
	}
	return b.Bytes()
}

// names drops the line numbers, which rendering changes.
func names(secs []*Section) []string {
	var out []string
	for _, s := range secs {
		out = append(out, "["+s.Name+"]")
		for _, e := range s.Entries {
			out = append(out, e.Key+"="+e.Value)
		}
	}
	return out
}

// Seeds beyond these live in testdata/fuzz/FuzzParse (the shipped configs
// and the quoting cases).
func FuzzParse(f *testing.F) {
	f.Add([]byte("[cluster]\nname = c1 ; c\nnode_ipv4: 192.0.2.2\n"))
	f.Add([]byte("k=v\n[a\n[ ]\n= x\n[b] # c\nargs = \"-x # y\" -z # c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		secs, errs := Parse("f.cfg", data)
		lines := bytes.Count(data, []byte("\n")) + 1
		bad := map[int]bool{}
		for _, e := range errs {
			if e.File != "f.cfg" || e.Line < 1 || e.Line > lines || e.Msg == "" || bad[e.Line] {
				t.Fatalf("bad error %+v (document has %d lines)", e, lines)
			}
			bad[e.Line] = true
		}
		last := 0 // entries and headers come in line order
		for i, s := range secs {
			if s.Name != strings.TrimSpace(s.Name) || strings.Contains(s.Name, "]") {
				t.Fatalf("section name %q", s.Name)
			}
			if s.Name == "" && (len(s.Entries) == 0 || s.Line != s.Entries[0].Line) {
				t.Fatalf("unnamed section %+v", s)
			}
			if s.Name == "" && i > 0 && len(errs) == 0 {
				t.Fatalf("unnamed section after the first without an error")
			}
			if s.Name != "" {
				if s.Line <= last || bad[s.Line] {
					t.Fatalf("section %+v out of order or on a bad line", s)
				}
				last = s.Line
			}
			for _, e := range s.Entries {
				if e.Line <= last || e.Line > lines || bad[e.Line] {
					t.Fatalf("entry %+v out of order or on a bad line", e)
				}
				last = e.Line
				if e.Key == "" || e.Key != strings.TrimSpace(e.Key) || strings.ContainsAny(e.Key, "=:") || strings.ContainsAny(e.Key[:1], "[#;") {
					t.Fatalf("key %q", e.Key)
				}
				if e.Value != strings.TrimSpace(e.Value) {
					t.Fatalf("value %q not trimmed", e.Value)
				}
			}
		}
		// Line endings do not matter.
		crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
		secs2, errs2 := Parse("f.cfg", crlf)
		if !reflect.DeepEqual(dump(secs), dump(secs2)) || !reflect.DeepEqual(dumpErrors(errs), dumpErrors(errs2)) {
			t.Fatalf("CRLF changed the parse:\n%q\n%q", dump(secs), dump(secs2))
		}
		// Nor does one byte order mark.
		if !bytes.HasPrefix(data, []byte("\uFEFF")) {
			secs3, errs3 := Parse("f.cfg", append([]byte("\uFEFF"), data...))
			if !reflect.DeepEqual(dump(secs), dump(secs3)) || !reflect.DeepEqual(dumpErrors(errs), dumpErrors(errs3)) {
				t.Fatalf("a byte order mark changed the parse")
			}
		}
		// What parses cleanly reads back the same after rendering.
		if len(errs) == 0 {
			out := render(secs)
			back, errs := Parse("r.cfg", out)
			if len(errs) != 0 || !reflect.DeepEqual(names(secs), names(back)) {
				t.Fatalf("round trip through\n%s\nchanged\n%q\nto\n%q (errors %v)", out, names(secs), names(back), dumpErrors(errs))
			}
		}
	})
}
