package keepalived

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
)

// memFS serves includes from a map, so tests and the fuzzer never touch
// the disk.
type memFS map[string]string

func (m memFS) options(id string) Options {
	return Options{
		ConfigID: id,
		ReadFile: func(name string) ([]byte, error) {
			s, ok := m[name]
			if !ok {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
			return []byte(s), nil
		},
		Glob: func(pattern string) ([]string, error) {
			var out []string
			for name := range m {
				if ok, err := path.Match(pattern, name); err != nil {
					return nil, err
				} else if ok {
					out = append(out, name)
				}
			}
			return out, nil
		},
	}
}

// dump renders a statement tree as "file:line word word {...}" lines.
func dump(stmts []*Stmt, depth int) []string {
	var out []string
	for _, s := range stmts {
		line := fmt.Sprintf("%s%s %s", strings.Repeat("  ", depth), s.Pos, strings.Join(quoteAll(s.Words), " "))
		if s.HasBlock {
			line += " {"
		}
		out = append(out, line)
		out = append(out, dump(s.Block, depth+1)...)
	}
	return out
}

func quoteAll(ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = fmt.Sprintf("%q", w)
	}
	return out
}

func TestParseSyntax(t *testing.T) {
	files := memFS{
		"/etc/k/main.conf": `! comment line
global_defs {   # trailing comment
  router_id "lb one"  ! quoted with a space
}
$PORT=80
$ADDR=10.0.0.1
virtual_server $ADDR ${PORT} {
  real_server 10.0.1.1 $PORT { weight 2 }
  notify_up "/bin/echo 'a b'#not-a-comment" x\y
}
vrrp_instance VI
{
  @lb1 priority 200
  @^lb1 priority 100
  @lb2 state BACKUP
  virtual_ipaddress {
    10.0.0.2/24 dev eth1
  }
}
include conf.d/*.conf
router ${UNDEFINED} ${_HASH}x
`,
		"/etc/k/conf.d/b.conf": "b_second 2\n",
		"/etc/k/conf.d/a.conf": "a_first 1 {\n}\n",
	}
	stmts, err := ParseFile("/etc/k/main.conf", files.options("lb1"))
	if err != nil {
		t.Fatal(err)
	}
	got := dump(stmts, 0)
	want := []string{
		`/etc/k/main.conf:2 "global_defs" {`,
		`  /etc/k/main.conf:3 "router_id" "lb one"`,
		`/etc/k/main.conf:7 "virtual_server" "10.0.0.1" "80" {`,
		`  /etc/k/main.conf:8 "real_server" "10.0.1.1" "80" {`,
		`    /etc/k/main.conf:8 "weight" "2"`,
		`  /etc/k/main.conf:9 "notify_up" "/bin/echo 'a b'#not-a-comment" "x\\y"`,
		`/etc/k/main.conf:11 "vrrp_instance" "VI" {`,
		`  /etc/k/main.conf:13 "priority" "200"`,
		`  /etc/k/main.conf:16 "virtual_ipaddress" {`,
		`    /etc/k/main.conf:17 "10.0.0.2/24" "dev" "eth1"`,
		`/etc/k/conf.d/a.conf:1 "a_first" "1" {`,
		`/etc/k/conf.d/b.conf:1 "b_second" "2"`,
		`/etc/k/main.conf:21 "router" "${UNDEFINED}" "#x"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParseErrors: every malformed input is refused with file:line.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files memFS
		id    string
		want  []string
	}{
		{"unclosed", memFS{"/k.conf": "a {\n b {\n }\n"},
			"", []string{"/k.conf:1: '{' is never closed"}},
		{"stray close", memFS{"/k.conf": "a {\n}\n}\nb\n"},
			"", []string{"/k.conf:3: '}' closes no block"}},
		{"unterminated quote", memFS{"/k.conf": "a {\n notify \"x y\n}\n"},
			"", []string{`/k.conf:2: unterminated " quote`}},
		{"conditional without id", memFS{"/k.conf": "a\n@lb1 b\n"},
			"", []string{"/k.conf:2: conditional line @lb1: say which node this file is for with --config-id (keepalived's -i)"}},
		{"seq", memFS{"/k.conf": "~SEQ(A, 1, 3) x $A\n"},
			"", []string{"/k.conf:1: ~SEQ blocks are not supported; expand them first"}},
		{"multi-line parameter", memFS{"/k.conf": "$X= \\\n a \\\n"},
			"", []string{"/k.conf:1: multi-line parameter $X is not supported; write it out"}},
		{"include no match", memFS{"/k.conf": "x\ninclude /etc/none/*.conf\n"},
			"", []string{"/k.conf:2: include /etc/none/*.conf matches no file"}},
		{"include missing file", memFS{"/k.conf": "include other.conf\n"},
			"", []string{"/k.conf:1: include other.conf matches no file"}},
		{"include loop", memFS{"/k.conf": "include /k.conf\n"},
			"", []string{fmt.Sprintf("/k.conf:1: include: includes nested deeper than %d (a loop?)", maxIncludeDepth)}},
		{"parameter loop", memFS{"/k.conf": "$A=$A x\nfoo $A\n"},
			"", []string{fmt.Sprintf("/k.conf:2: parameters expand more than %d levels deep (a loop?)", maxSubstitution)}},
		{"brace without keyword", memFS{"/k.conf": "a {\n}\n{\n}\n"},
			"", []string{"/k.conf:3: '{' opens a block without a keyword"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("/k.conf", tc.files.options(tc.id))
			got := errStrings(err)
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func errStrings(err error) []string {
	if err == nil {
		return nil
	}
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		var out []string
		for _, e := range multi.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// TestParseLimits: inputs built to blow up (parameter bombs, include
// loops with fan-out, deep nesting) end with a bounded list of errors
// rather than exhausting memory or time. (The fuzzer found the first two.)
func TestParseLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string // an error that must be among the ones reported
	}{
		{"parameter bomb", "$A=" + strings.Repeat("${B}", 1000) + "\n$B=" + strings.Repeat("x", 1000) + "\n" + strings.Repeat("${A}", 1000) + "\n",
			fmt.Sprintf("/k.conf:3: parameter expansion longer than %d bytes", maxLineLen)},
		{"include fan-out", strings.Repeat("include /k.conf\n", 50), fmt.Sprintf("more than %d errors; stopped here", maxErrors)},
		{"deep nesting", strings.Repeat("a {\n", 1000), fmt.Sprintf("/k.conf:%d: blocks nested deeper than %d", maxBlockDepth+1, maxBlockDepth)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("/k.conf", memFS{"/k.conf": tc.in}.options(""))
			got := errStrings(err)
			if len(got) > maxErrors+1 {
				t.Errorf("%d errors, want at most %d", len(got), maxErrors+1)
			}
			if !slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, tc.want) }) {
				t.Errorf("errors %q\nwant one ending %q", got[:min(len(got), 5)], tc.want)
			}
		})
	}
}
