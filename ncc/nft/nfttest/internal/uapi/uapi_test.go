package uapi

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// headers are the headers this package copies from.
var headers = []string{
	"/usr/include/linux/netlink.h",
	"/usr/include/linux/netfilter.h",
	"/usr/include/linux/netfilter/nfnetlink.h",
	"/usr/include/linux/netfilter/nf_tables.h",
	"/usr/include/asm-generic/errno.h",
}

// notInHeaders are the constants that no user-space header has.
var notInHeaders = map[string]bool{"NFT_RULE_MAXEXPRS": true, "NFT_MODULE_AUTOLOAD_LIMIT": true, "TASK_COMM_LEN": true, "NLMSG_GOODSIZE": true}

// TestConstantsMatchHeaders compares every constant of uapi.go with the
// value the installed headers give the same name.
func TestConstantsMatchHeaders(t *testing.T) {
	vals := map[string]int64{}
	for _, h := range headers {
		src, err := os.ReadFile(h)
		if os.IsNotExist(err) {
			t.Skipf("needs the kernel's user-space headers (Debian package linux-libc-dev): %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		parseHeader(string(src), vals)
	}
	ours := constants(t)
	if len(ours) < 60 {
		t.Fatalf("read %d constants from uapi.go", len(ours))
	}
	for name, v := range ours {
		hv, ok := vals[name]
		switch {
		case notInHeaders[name]:
		case !ok:
			t.Errorf("%s = %d: not in the headers", name, v)
		case hv != v:
			t.Errorf("%s = %d here, %d in the headers", name, v, hv)
		}
	}
}

// constants evaluates uapi.go's constants, as the compiler does.
func constants(t *testing.T) map[string]int64 {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "uapi.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := (&types.Config{Importer: importer.Default()}).Check("uapi", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, name := range pkg.Scope().Names() {
		if c, ok := pkg.Scope().Lookup(name).(*types.Const); ok {
			v, exact := constant.Int64Val(c.Val())
			if !exact {
				t.Fatalf("%s is no integer", name)
			}
			out[name] = v
		}
	}
	return out
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment  = regexp.MustCompile(`//[^\n]*`)
	defineRe     = regexp.MustCompile(`(?m)^#define[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]+(.+)$`)
	enumRe       = regexp.MustCompile(`(?s)enum\s*[A-Za-z_0-9]*\s*\{(.*?)\}\s*;`)
)

// parseHeader adds a header's object-like #defines and enum members to
// vals: the ones whose value is an integer expression over numbers and
// earlier names. Enums and defines are taken in turn, enums first; the
// headers used here define nothing in terms of a later enum.
func parseHeader(src string, vals map[string]int64) {
	src = blockComment.ReplaceAllString(src, "")
	src = lineComment.ReplaceAllString(src, "")
	src = strings.ReplaceAll(src, "\\\n", " ")
	for _, m := range enumRe.FindAllStringSubmatch(src, -1) {
		next := int64(0)
		for _, member := range strings.Split(m[1], ",") {
			member = strings.TrimSpace(member)
			if member == "" {
				continue
			}
			name, expr, explicit := strings.Cut(member, "=")
			name = strings.TrimSpace(name)
			if explicit {
				v, err := eval(expr, vals)
				if err != nil {
					continue
				}
				next = v
			}
			vals[name] = next
			next++
		}
	}
	for _, m := range defineRe.FindAllStringSubmatch(src, -1) {
		if v, err := eval(m[2], vals); err == nil {
			vals[m[1]] = v
		}
	}
}

var tokenRe = regexp.MustCompile(`\s*(0[xX][0-9a-fA-F]+|[0-9]+|[A-Za-z_][A-Za-z0-9_]*|<<|[|+\-()])[uUlL]*`)

// eval evaluates a C integer expression of numbers, names, parentheses,
// unary minus, +, -, << and |.
func eval(s string, vals map[string]int64) (int64, error) {
	var toks []string
	s = strings.TrimSpace(s)
	for s != "" {
		m := tokenRe.FindStringSubmatchIndex(s)
		if m == nil || m[0] != 0 {
			return 0, fmt.Errorf("cannot read %q", s)
		}
		toks = append(toks, s[m[2]:m[3]])
		s = strings.TrimSpace(s[m[1]:])
	}
	p := &exprParser{toks: toks, vals: vals}
	v, err := p.or()
	if err == nil && p.i != len(p.toks) {
		err = fmt.Errorf("trailing %q", p.toks[p.i:])
	}
	return v, err
}

type exprParser struct {
	toks []string
	i    int
	vals map[string]int64
}

func (p *exprParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *exprParser) or() (int64, error) {
	v, err := p.shift()
	for err == nil && p.peek() == "|" {
		p.i++
		var w int64
		w, err = p.shift()
		v |= w
	}
	return v, err
}

func (p *exprParser) shift() (int64, error) {
	v, err := p.add()
	for err == nil && p.peek() == "<<" {
		p.i++
		var w int64
		w, err = p.add()
		v <<= w
	}
	return v, err
}

func (p *exprParser) add() (int64, error) {
	v, err := p.unary()
	for err == nil && (p.peek() == "+" || p.peek() == "-") {
		op := p.peek()
		p.i++
		var w int64
		w, err = p.unary()
		if op == "+" {
			v += w
		} else {
			v -= w
		}
	}
	return v, err
}

func (p *exprParser) unary() (int64, error) {
	tok := p.peek()
	p.i++
	switch {
	case tok == "-":
		v, err := p.unary()
		return -v, err
	case tok == "(":
		v, err := p.or()
		if err == nil && p.peek() != ")" {
			return 0, fmt.Errorf("no )")
		}
		p.i++
		return v, err
	case tok == "":
		return 0, fmt.Errorf("unexpected end")
	case tok[0] >= '0' && tok[0] <= '9':
		return strconv.ParseInt(tok, 0, 64)
	}
	if v, ok := p.vals[tok]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("unknown name %s", tok)
}

// TestEval keeps the header reader honest on the forms the headers use.
func TestEval(t *testing.T) {
	vals := map[string]int64{"A": 0x10}
	for in, want := range map[string]int64{"0x10": 16, "A+1": 17, "(1 << 2)": 4, "(A | 0x1)": 17, "-1": -1, "4U": 4, "1 << 2 | 1": 5} {
		if got, err := eval(in, vals); err != nil || got != want {
			t.Errorf("eval(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	parseHeader("enum x {\n\tX_A,\n\tX_B = 5,\n\tX_C,\n\t__X_MAX\n};\n#define X_MAX (__X_MAX - 1)\n#define F(x) x\n", vals)
	for name, want := range map[string]int64{"X_A": 0, "X_B": 5, "X_C": 6, "X_MAX": 6} {
		if vals[name] != want {
			t.Errorf("%s = %d, want %d", name, vals[name], want)
		}
	}
	if _, ok := vals["F"]; ok {
		t.Errorf("a function-like macro was read as a constant")
	}
}
