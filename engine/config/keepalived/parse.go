package keepalived

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/seesawlb/seesaw/engine/config"
)

// Pos is where a statement starts.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Stmt is one statement: its words, and the statements of its block when it
// opens one ("virtual_server 10.0.0.1 80 { ... }").
type Stmt struct {
	Pos      Pos
	Words    []string
	HasBlock bool
	Block    []*Stmt
}

// Keyword is the statement's first word.
func (s *Stmt) Keyword() string { return s.Words[0] }

// Args are the words after the keyword.
func (s *Stmt) Args() []string { return s.Words[1:] }

// Options say how to read a configuration.
type Options struct {
	// ConfigID selects conditional lines ("@id ..."), as keepalived's -i
	// does. Empty means the configuration must have none.
	ConfigID string
	// ReadFile and Glob default to the OS's; tests and the fuzzer replace
	// them to keep includes inside a map.
	ReadFile func(name string) ([]byte, error)
	Glob     func(pattern string) ([]string, error)
}

// Limits that keep a hostile or looping configuration from exhausting the
// importer (the fuzzer finds these).
const (
	maxIncludeDepth = 16
	maxBlockDepth   = 64
	maxSubstitution = 16 // recursive parameter expansions per line
	maxLineLen      = 1 << 16
	maxFiles        = 1000 // files read per parse, includes and all
	maxErrors       = 100  // then the parse stops
)

// ParseFile reads path and the files it includes. Errors are config.Errors,
// each naming its file and line.
func ParseFile(path string, o Options) ([]*Stmt, error) {
	l := newLexer(o)
	l.file(path, Pos{}, 0)
	return l.finish()
}

// Parse parses data as if read from name; includes are read relative to
// name's directory.
func Parse(name string, data []byte, o Options) ([]*Stmt, error) {
	l := newLexer(o)
	l.lines(name, data, 0)
	return l.finish()
}

// token is a word or a brace, with the line it came from. eol marks the last
// token of a line: a statement ends there.
type token struct {
	pos  Pos
	text string
	// brace is '{' or '}' for an unquoted brace, else 0.
	brace byte
	eol   bool
}

type lexer struct {
	o      Options
	toks   []token
	errs   config.Errors
	params map[string]string
	pwd    string // directory of the file being read, for ${_PWD}
	nfiles int
}

func newLexer(o Options) *lexer {
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Glob == nil {
		o.Glob = filepath.Glob
	}
	return &lexer{o: o, params: map[string]string{}}
}

func (l *lexer) errorf(p Pos, format string, args ...any) {
	switch {
	case len(l.errs) < maxErrors:
		l.errs = append(l.errs, config.Issue{File: p.File, Line: p.Line, Msg: fmt.Sprintf(format, args...)})
	case len(l.errs) == maxErrors:
		l.errs = append(l.errs, config.Issue{File: p.File, Line: p.Line, Msg: fmt.Sprintf("more than %d errors; stopped here", maxErrors)})
	}
}

// stopped reports that reading should stop: too many errors or files.
func (l *lexer) stopped() bool { return len(l.errs) > maxErrors || l.nfiles > maxFiles }

// file reads one file; from is the include line that named it (zero for
// the top file).
func (l *lexer) file(path string, from Pos, depth int) {
	if l.nfiles++; l.nfiles > maxFiles {
		if l.nfiles == maxFiles+1 {
			l.errorf(from, "more than %d files included", maxFiles)
		}
		return
	}
	data, err := l.o.ReadFile(path)
	if err != nil {
		if from.File == "" {
			l.errs = append(l.errs, fmt.Errorf("keepalived: %w", err))
		} else {
			l.errorf(from, "include: %v", err)
		}
		return
	}
	l.lines(path, data, depth)
}

func (l *lexer) lines(name string, data []byte, depth int) {
	defer func(prev string) { l.pwd = prev }(l.pwd)
	l.pwd = filepath.Dir(name)
	for i, raw := range strings.Split(string(data), "\n") {
		pos := Pos{File: name, Line: i + 1}
		line := strings.TrimRight(raw, "\r")
		if len(line) > maxLineLen {
			l.errorf(pos, "line longer than %d bytes", maxLineLen)
			continue
		}
		l.line(pos, line, depth)
	}
}

func (l *lexer) line(pos Pos, line string, depth int) {
	if l.stopped() {
		return
	}
	line = strings.TrimLeft(line, " \t")
	// Conditional configuration: "@id rest" keeps rest only on node id,
	// "@^id rest" everywhere else.
	if strings.HasPrefix(line, "@") {
		word, rest, _ := strings.Cut(line[1:], " ")
		if strings.ContainsRune(word, '\t') {
			word, rest, _ = strings.Cut(line[1:], "\t")
		}
		neg := strings.HasPrefix(word, "^")
		word = strings.TrimPrefix(word, "^")
		if l.o.ConfigID == "" {
			l.errorf(pos, "conditional line @%s: say which node this file is for with --config-id (keepalived's -i)", word)
			return
		}
		if (word == l.o.ConfigID) == neg {
			return
		}
		line = strings.TrimLeft(rest, " \t")
	}
	if strings.HasPrefix(line, "~SEQ") || strings.HasPrefix(line, "~LST") {
		l.errorf(pos, "%s blocks are not supported; expand them first", line[:4])
		return
	}
	line = stripComment(line)
	if strings.HasPrefix(line, "$") {
		if name, val, ok := strings.Cut(line[1:], "="); ok && paramName(name) {
			val = strings.TrimSpace(val)
			if strings.HasSuffix(val, `\`) || val == "" && strings.HasSuffix(line, `\`) {
				l.errorf(pos, "multi-line parameter $%s is not supported; write it out", name)
				return
			}
			l.params[name] = val
			return
		}
	}
	words := strings.Fields(line)
	if len(words) > 0 && isInclude(words[0]) {
		if depth >= maxIncludeDepth {
			l.errorf(pos, "%s: includes nested deeper than %d (a loop?)", words[0], maxIncludeDepth)
			return
		}
		if len(words) != 2 {
			l.errorf(pos, "%s needs exactly one file name or pattern", words[0])
			return
		}
		pattern := words[1]
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(filepath.Dir(pos.File), pattern)
		}
		matches, err := l.o.Glob(pattern)
		if err != nil {
			l.errorf(pos, "%s %s: %v", words[0], words[1], err)
			return
		}
		if len(matches) == 0 {
			// keepalived's plain include skips this silently; an import
			// that silently misses part of the config is worse.
			l.errorf(pos, "%s %s matches no file", words[0], words[1])
			return
		}
		slices.Sort(matches)
		for _, m := range matches {
			l.file(m, pos, depth+1)
		}
		return
	}
	line = l.substitute(pos, line)
	l.tokenize(pos, line)
}

func isInclude(w string) bool {
	switch w {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

func paramName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// stripComment cuts the line at the first '#' or '!' outside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' || c == '!':
			return s[:i]
		}
	}
	return s
}

// substitute expands ${NAME} anywhere and $NAME before whitespace or the end
// of the line, recursively; undefined parameters stay as written.
func (l *lexer) substitute(pos Pos, s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	for range maxSubstitution {
		out, changed := l.substituteOnce(s)
		if !changed {
			return out
		}
		if len(out) > maxLineLen {
			l.errorf(pos, "parameter expansion longer than %d bytes", maxLineLen)
			return ""
		}
		s = out
	}
	l.errorf(pos, "parameters expand more than %d levels deep (a loop?)", maxSubstitution)
	return ""
}

func (l *lexer) substituteOnce(s string) (string, bool) {
	var b strings.Builder
	changed := false
	closing := nextByte(s, '}')
	for i := 0; i < len(s); i++ {
		if b.Len() > maxLineLen {
			// substitute reports it; stop before it costs memory.
			return b.String(), true
		}
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			if end := closing(i + 2); end >= 0 {
				if v, ok := l.param(s[i+2 : end]); ok {
					b.WriteString(v)
					i = end
					changed = true
					continue
				}
			}
			b.WriteByte('$')
			continue
		}
		j := i + 1
		for j < len(s) && nameByte(s[j]) {
			j++
		}
		if j < len(s) && s[j] != ' ' && s[j] != '\t' {
			// $NAME must be followed by whitespace (or use ${NAME}).
			b.WriteByte('$')
			continue
		}
		if v, ok := l.param(s[i+1 : j]); ok && j > i+1 {
			b.WriteString(v)
			i = j - 1
			changed = true
			continue
		}
		b.WriteByte('$')
	}
	return b.String(), changed
}

func nameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// nextByte returns a function giving the index of the first c at or after
// from, or -1, in amortised constant time for increasing from (a line of
// many "${" must not cost quadratic time).
func nextByte(s string, c byte) func(from int) int {
	next := -2 // not yet searched
	return func(from int) int {
		if next == -1 {
			return -1
		}
		if next < from {
			if k := strings.IndexByte(s[min(from, len(s)):], c); k >= 0 {
				next = from + k
			} else {
				next = -1
			}
		}
		return next
	}
}

func (l *lexer) param(name string) (string, bool) {
	switch name {
	case "_HASH":
		return "#", true
	case "_BANG":
		return "!", true
	case "_INSTANCE":
		return l.o.ConfigID, l.o.ConfigID != ""
	case "_PWD":
		return l.pwd, true
	}
	v, ok := l.params[name]
	return v, ok
}

// tokenize splits a comment-free line into words and braces. Quotes group
// words (and are removed, as in a shell); a brace inside quotes is a word.
func (l *lexer) tokenize(pos Pos, s string) {
	start := len(l.toks)
	closing := nextByte(s, '}')
	var word strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			l.toks = append(l.toks, token{pos: pos, text: word.String()})
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\v' || c == '\f':
			flush()
		case c == '$' && i+1 < len(s) && s[i+1] == '{' && closing(i+2) >= 0:
			// An undefined ${NAME} stays as written, braces and all.
			end := closing(i + 2)
			inWord = true
			word.WriteString(s[i : end+1])
			i = end
		case c == '{' || c == '}':
			flush()
			l.toks = append(l.toks, token{pos: pos, text: string(c), brace: c})
		case c == '"' || c == '\'':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					word.WriteByte(unescape(s[j]))
					continue
				}
				word.WriteByte(s[j])
			}
			if j >= len(s) {
				l.errorf(pos, "unterminated %c quote", c)
				l.toks = l.toks[:start]
				return
			}
			i = j
		default:
			inWord = true
			word.WriteByte(c)
		}
	}
	flush()
	if len(l.toks) > start {
		l.toks[len(l.toks)-1].eol = true
	}
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

// finish builds the statement tree from the tokens.
func (l *lexer) finish() ([]*Stmt, error) {
	p := &treeParser{toks: l.toks, l: l}
	stmts := p.block(0, Pos{})
	if len(l.errs) > 0 {
		return stmts, l.errs
	}
	return stmts, nil
}

type treeParser struct {
	toks []token
	i    int
	l    *lexer
}

// block reads statements until the '}' that closes the block opened at
// open (depth > 0) or the end of input (depth 0).
func (p *treeParser) block(depth int, open Pos) []*Stmt {
	var out []*Stmt
	var cur *Stmt
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		p.i++
		switch t.brace {
		case '}':
			if depth == 0 {
				p.l.errorf(t.pos, "'}' closes no block")
				cur = nil
				continue
			}
			return out
		case '{':
			if cur == nil {
				// "keyword" on one line and "{" on the next: keepalived
				// accepts it for a statement that has no block yet.
				if n := len(out); n > 0 && !out[n-1].HasBlock {
					cur = out[n-1]
				} else {
					p.l.errorf(t.pos, "'{' opens a block without a keyword")
					cur = &Stmt{Pos: t.pos, Words: []string{""}}
				}
			}
			if depth+1 > maxBlockDepth {
				p.l.errorf(t.pos, "blocks nested deeper than %d", maxBlockDepth)
				p.i = len(p.toks)
				return out
			}
			cur.HasBlock = true
			cur.Block = p.block(depth+1, t.pos)
			cur = nil
			continue
		}
		if cur == nil {
			cur = &Stmt{Pos: t.pos}
			out = append(out, cur)
		}
		cur.Words = append(cur.Words, t.text)
		if t.eol {
			cur = nil
		}
	}
	if depth > 0 {
		p.l.errorf(open, "'{' is never closed")
	}
	return out
}
