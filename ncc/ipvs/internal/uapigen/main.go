// Command uapigen writes the IPVS constants of <linux/ip_vs.h> as Go, so that
// the client's numbers come from the kernel's own header and not from a
// hand-copied list.
//
//	go run ./ncc/ipvs/internal/uapigen /usr/include/linux/ip_vs.h > ncc/ipvs/internal/uapi/zz_ip_vs.go
//
// It understands exactly what that header uses: object-like #defines whose
// value is an integer, a string or an expression over earlier names (+, |,
// <<, parentheses), and anonymous enums with implicit numbering. Function-like
// macros, structs and the sentinel members (__*_MAX) are skipped.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"go/format"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: uapigen /usr/include/linux/ip_vs.h > zz_ip_vs.go")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "uapigen:", err)
		os.Exit(1)
	}
	out, err := Generate(src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "uapigen:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

// Const is one name from the header with its value.
type Const struct {
	Name   string
	Int    int64
	Str    string
	IsStr  bool
	Origin string // "define" or "enum"
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment  = regexp.MustCompile(`//[^\n]*`)
	defineRe     = regexp.MustCompile(`^#define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.+)$`)
	enumRe       = regexp.MustCompile(`(?s)enum\s*\{(.*?)\}\s*;`)
	identRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Parse reads the constants of an ip_vs.h-like header, in header order.
func Parse(src []byte) ([]Const, error) {
	text := blockComment.ReplaceAllStringFunc(string(src), func(c string) string {
		// Keep line numbers stable for error messages.
		return strings.Repeat("\n", strings.Count(c, "\n"))
	})
	text = lineComment.ReplaceAllString(text, "")
	text = strings.ReplaceAll(text, "\\\n", " ")

	vals := map[string]int64{}
	var out []Const
	add := func(c Const) error {
		if _, dup := vals[c.Name]; dup {
			return fmt.Errorf("%s defined twice", c.Name)
		}
		vals[c.Name] = c.Int
		out = append(out, c)
		return nil
	}

	// Enums and defines are interleaved; walk the text in order.
	type span struct {
		at   int
		enum string
	}
	var enums []span
	for _, m := range enumRe.FindAllStringSubmatchIndex(text, -1) {
		enums = append(enums, span{at: m[0], enum: text[m[2]:m[3]]})
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pos, ei := 0, 0
	for sc.Scan() {
		line := sc.Text()
		start := pos
		pos += len(line) + 1
		for ei < len(enums) && enums[ei].at < pos && enums[ei].at >= start {
			if err := parseEnum(enums[ei].enum, vals, add); err != nil {
				return nil, err
			}
			ei++
		}
		m := defineRe.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		name, val := m[1], strings.TrimSpace(m[2])
		if strings.HasPrefix(name, "_") || strings.Contains(line, name+"(") {
			continue // include guard or function-like macro
		}
		if strings.HasPrefix(val, `"`) {
			s, err := strconv.Unquote(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if err := add(Const{Name: name, Str: s, IsStr: true, Origin: "define"}); err != nil {
				return nil, err
			}
			continue
		}
		v, err := eval(val, vals)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := add(Const{Name: name, Int: v, Origin: "define"}); err != nil {
			return nil, err
		}
	}
	if ei != len(enums) {
		return nil, fmt.Errorf("lost track of %d enums", len(enums)-ei)
	}
	return out, nil
}

func parseEnum(body string, vals map[string]int64, add func(Const) error) error {
	next := int64(0)
	for _, item := range strings.Split(body, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, expr, hasVal := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !identRe.MatchString(name) {
			return fmt.Errorf("enum member %q", item)
		}
		v := next
		if hasVal {
			var err error
			if v, err = eval(strings.TrimSpace(expr), vals); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		next = v + 1
		if strings.HasPrefix(name, "__") {
			vals[name] = v // sentinel: usable in later expressions, not emitted
			continue
		}
		if err := add(Const{Name: name, Int: v, Origin: "enum"}); err != nil {
			return err
		}
	}
	return nil
}

// eval computes a C integer constant expression with the operators the
// header uses.
func eval(expr string, vals map[string]int64) (int64, error) {
	p := &exprParser{toks: tokenize(expr), vals: vals}
	v, err := p.or()
	if err != nil {
		return 0, err
	}
	if p.i != len(p.toks) {
		return 0, fmt.Errorf("trailing %q in %q", p.toks[p.i:], expr)
	}
	return v, nil
}

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '<' && i+1 < len(s) && s[i+1] == '<':
			toks = append(toks, "<<")
			i += 2
		case strings.IndexByte("()|+-~", c) >= 0:
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= '0' && s[j] <= '9' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				j++
			}
			if j == i {
				toks = append(toks, string(c)) // unknown: the parser rejects it
				i++
				continue
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
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
		var r int64
		r, err = p.shift()
		v |= r
	}
	return v, err
}

func (p *exprParser) shift() (int64, error) {
	v, err := p.sum()
	for err == nil && p.peek() == "<<" {
		p.i++
		var r int64
		r, err = p.sum()
		v <<= uint(r)
	}
	return v, err
}

func (p *exprParser) sum() (int64, error) {
	v, err := p.unary()
	for err == nil && (p.peek() == "+" || p.peek() == "-") {
		op := p.peek()
		p.i++
		var r int64
		r, err = p.unary()
		if op == "+" {
			v += r
		} else {
			v -= r
		}
	}
	return v, err
}

func (p *exprParser) unary() (int64, error) {
	switch t := p.peek(); {
	case t == "(":
		p.i++
		v, err := p.or()
		if err != nil {
			return 0, err
		}
		if p.peek() != ")" {
			return 0, fmt.Errorf("missing )")
		}
		p.i++
		return v, nil
	case t == "-":
		p.i++
		v, err := p.unary()
		return -v, err
	case t == "":
		return 0, fmt.Errorf("unexpected end of expression")
	case t[0] >= '0' && t[0] <= '9':
		p.i++
		return strconv.ParseInt(strings.TrimRight(t, "uUlL"), 0, 64)
	case identRe.MatchString(t):
		p.i++
		v, ok := p.vals[t]
		if !ok {
			return 0, fmt.Errorf("unknown name %s", t)
		}
		return v, nil
	default:
		return 0, fmt.Errorf("unexpected %q", t)
	}
}

// Generate renders the header's constants as a formatted Go file of package
// uapi.
func Generate(src []byte) ([]byte, error) {
	consts, err := Parse(src)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	render(&b, consts)
	return format.Source(b.Bytes())
}

func render(w io.Writer, consts []Const) {
	fmt.Fprint(w, "// Code generated by ncc/ipvs/internal/uapigen from <linux/ip_vs.h>; DO NOT EDIT.\n\n")
	fmt.Fprint(w, "package uapi\n\n")
	// Group by origin so the file reads like the header: defines, then enums.
	for _, origin := range []string{"define", "enum"} {
		var names []Const
		for _, c := range consts {
			if c.Origin == origin {
				names = append(names, c)
			}
		}
		fmt.Fprintf(w, "// From the header's %ss.\nconst (\n", origin)
		for _, c := range names {
			if c.IsStr {
				fmt.Fprintf(w, "\t%s = %q\n", c.Name, c.Str)
				continue
			}
			if c.Int > 9 {
				fmt.Fprintf(w, "\t%s = %#x\n", c.Name, c.Int)
			} else {
				fmt.Fprintf(w, "\t%s = %d\n", c.Name, c.Int)
			}
		}
		fmt.Fprint(w, ")\n\n")
	}
}
