// Package ini reads the INI dialect of Seesaw's config files, seesaw.cfg and
// watchdog.cfg, so that both follow the same rules. It is syntax only: what
// the sections and keys mean, whether their names are case-sensitive, and
// whether a repeated section or key is an error, a warning or a merge are
// the caller's to decide, so Parse returns every section and entry as
// written, in file order.
//
// The rules combine those of the two files' former parsers (seesaw.cfg's
// followed goconf, which Seesaw v2 used):
//
//   - Lines end at '\n'; surrounding whitespace (including a CRLF file's
//     '\r') is ignored. A leading UTF-8 byte order mark is ignored; a line
//     that is not valid UTF-8 is an error.
//   - A line whose first non-blank character is '#' or ';' is a comment.
//   - "[name]" starts a section; a comment may follow the ']'. The name is
//     trimmed and may not be empty.
//   - "key = value" or "key: value": the first '=' or ':' separates them, so
//     a value may hold either. Key and value are trimmed; the key may not be
//     empty, the value may.
//   - In a value, a '#' or ';' after a space or tab starts a comment, unless
//     it is inside double quotes (where '\' escapes '"' and '\'), so that
//     watchdog.cfg's quoted args may hold them. The quotes are kept: what
//     they mean is the caller's business.
//   - Entries before the first header, or after a malformed one, belong to a
//     section with an empty name, so that the caller can say they are
//     outside any section.
//
// Every malformed line is reported, not just the first.
package ini

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Entry is one "key = value" line.
type Entry struct {
	Key   string
	Value string
	Line  int
}

// Section is one "[name]" header and the entries under it. A name repeated
// in the file gives a Section per occurrence.
type Section struct {
	Name    string // as written; empty for entries outside any section
	Line    int    // of the header, or of the first entry when Name is empty
	Entries []Entry
}

// Error is one malformed line.
type Error struct {
	File string
	Line int
	Msg  string
}

// Error renders "file:line: msg", the way compilers do.
func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads data; file names it in errors. It returns the sections in file
// order and one Error per malformed line, in line order. The lines it could
// read are returned even when others are malformed, so that a caller can
// report the problems in them too.
func Parse(file string, data []byte) ([]*Section, []*Error) {
	var (
		sections []*Section
		errs     []*Error
		cur      *Section
	)
	fail := func(line int, msg string) {
		errs = append(errs, &Error{File: file, Line: line, Msg: msg})
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		if !utf8.ValidString(raw) {
			fail(n, "line is not valid UTF-8")
			continue
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			// Until the next good header, entries are outside any section.
			cur = nil
			end := strings.IndexByte(line, ']')
			if end < 0 || !isComment(strings.TrimSpace(line[end+1:])) {
				fail(n, `malformed section header, want "[name]"`)
				continue
			}
			name := strings.TrimSpace(line[1:end])
			if name == "" {
				fail(n, "empty section name")
				continue
			}
			cur = &Section{Name: name, Line: n}
			sections = append(sections, cur)
			continue
		}
		sep := strings.IndexAny(line, "=:")
		if sep < 0 {
			fail(n, `want "key = value" or "[section]"`)
			continue
		}
		key := strings.TrimSpace(line[:sep])
		if key == "" {
			fail(n, "missing key before "+strconv.Quote(line[sep:sep+1]))
			continue
		}
		if cur == nil {
			cur = &Section{Line: n}
			sections = append(sections, cur)
		}
		cur.Entries = append(cur.Entries, Entry{Key: key, Value: stripComment(line[sep+1:]), Line: n})
	}
	return sections, errs
}

// isComment reports whether what follows a section header's ']' (trimmed)
// is nothing or a comment.
func isComment(rest string) bool {
	return rest == "" || rest[0] == '#' || rest[0] == ';'
}

// stripComment removes a trailing " # comment" or " ; comment" and the
// surrounding whitespace from a value. Comment characters inside double
// quotes are part of the value.
func stripComment(v string) string {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\'):
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && (c == '#' || c == ';') && i > 0 && (v[i-1] == ' ' || v[i-1] == '\t'):
			return strings.TrimSpace(v[:i])
		}
	}
	return strings.TrimSpace(v)
}
