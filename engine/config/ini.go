package config

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// iniEntry is one "key = value" line.
type iniEntry struct {
	Key   string
	Value string
	Line  int
}

// iniSection is a "[name]" header and the entries under it. Entries that come
// before any header belong to a section with an empty name.
type iniSection struct {
	Name    string
	Line    int
	Entries []iniEntry
}

// parseINI reads the subset of INI that seesaw.cfg uses (and that goconf,
// which Seesaw v2 used, accepts): "[section]" headers, "key = value" or
// "key: value" lines, whole-line comments starting with '#' or ';', and
// comments after a value when the '#' or ';' follows whitespace. Section and
// key names are case-insensitive and returned in lower case. A repeated
// section is returned once with the entries of every occurrence.
// Every malformed line is reported, not just the first.
func parseINI(file string, data []byte) ([]*iniSection, Errors) {
	var (
		errs     Errors
		sections []*iniSection
		byName   = map[string]*iniSection{}
		cur      *iniSection
	)
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	for i, raw := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		if !utf8.ValidString(raw) {
			errs = append(errs, Issue{File: file, Line: lineNo, Msg: "line is not valid UTF-8"})
			continue
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			rest := ""
			if end >= 0 {
				rest = strings.TrimSpace(line[end+1:])
			}
			if end < 0 || (rest != "" && rest[0] != '#' && rest[0] != ';') {
				errs = append(errs, Issue{File: file, Line: lineNo, Msg: `malformed section header, want "[name]"`})
				cur = nil
				continue
			}
			name := strings.ToLower(strings.TrimSpace(line[1:end]))
			if name == "" {
				errs = append(errs, Issue{File: file, Line: lineNo, Msg: "empty section name"})
				cur = nil
				continue
			}
			if s, ok := byName[name]; ok {
				cur = s
				continue
			}
			cur = &iniSection{Name: name, Line: lineNo}
			byName[name] = cur
			sections = append(sections, cur)
			continue
		}
		sep := strings.IndexAny(line, "=:")
		if sep < 0 {
			errs = append(errs, Issue{File: file, Line: lineNo, Msg: `want "key = value" or "[section]"`})
			continue
		}
		key := strings.ToLower(strings.TrimSpace(line[:sep]))
		if key == "" {
			errs = append(errs, Issue{File: file, Line: lineNo, Msg: "missing key before " + quote(line[sep:sep+1])})
			continue
		}
		if cur == nil {
			// Keys before the first header (or after a broken one) are kept
			// in an unnamed section so the caller can warn about them.
			cur = byName[""]
			if cur == nil {
				cur = &iniSection{Line: lineNo}
				byName[""] = cur
				sections = append(sections, cur)
			}
		}
		cur.Entries = append(cur.Entries, iniEntry{Key: key, Value: stripComment(line[sep+1:]), Line: lineNo})
	}
	return sections, errs
}

// stripComment removes a trailing " # comment" or " ; comment" and the
// surrounding whitespace from a value.
func stripComment(v string) string {
	for i := 1; i < len(v); i++ {
		if (v[i] == '#' || v[i] == ';') && (v[i-1] == ' ' || v[i-1] == '\t') {
			v = v[:i]
			break
		}
	}
	return strings.TrimSpace(v)
}
