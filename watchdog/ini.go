package watchdog

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// iniKey is one "key = value" line, remembered with its line number so that
// validation errors can point at it.
type iniKey struct {
	name  string
	value string
	line  int
}

// iniSection is one "[name]" block in file order.
type iniSection struct {
	name string
	line int
	keys []iniKey
}

// key returns the named key and whether it is present.
func (s *iniSection) key(name string) (iniKey, bool) {
	for _, k := range s.keys {
		if k.name == name {
			return k, true
		}
	}
	return iniKey{}, false
}

// readINI reads the subset of INI that Seesaw's watchdog.cfg uses: "[section]"
// headers, "key = value" (or "key: value") lines, and full-line comments
// starting with '#' or ';'. Keys before the first section, duplicate sections
// and duplicate keys are errors rather than silently merged, because a
// supervisor config with an ambiguous entry is more likely a typo than intent.
func readINI(r io.Reader, file string) ([]*iniSection, error) {
	var (
		sections []*iniSection
		cur      *iniSection
		seen     = map[string]int{}
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if line[len(line)-1] != ']' {
				return nil, &ConfigError{File: file, Line: n, Msg: "section header without closing ']'"}
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if name == "" {
				return nil, &ConfigError{File: file, Line: n, Msg: "empty section name"}
			}
			if prev, ok := seen[name]; ok {
				return nil, &ConfigError{File: file, Line: n, Msg: fmt.Sprintf("section [%s] already defined at line %d", name, prev)}
			}
			seen[name] = n
			cur = &iniSection{name: name, line: n}
			sections = append(sections, cur)
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, &ConfigError{File: file, Line: n, Msg: fmt.Sprintf("expected \"key = value\", got %q", line)}
		}
		name := strings.TrimSpace(line[:i])
		if name == "" {
			return nil, &ConfigError{File: file, Line: n, Msg: "missing key name"}
		}
		if cur == nil {
			return nil, &ConfigError{File: file, Line: n, Key: name, Msg: "key outside of any section"}
		}
		if prev, ok := cur.key(name); ok {
			return nil, &ConfigError{File: file, Line: n, Key: name, Msg: fmt.Sprintf("already set at line %d", prev.line)}
		}
		cur.keys = append(cur.keys, iniKey{name: name, value: strings.TrimSpace(line[i+1:]), line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, &ConfigError{File: file, Msg: "read", Err: err}
	}
	return sections, nil
}
