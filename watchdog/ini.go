package watchdog

import (
	"fmt"
	"io"

	"github.com/seesawlb/seesaw/engine/config/ini"
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

// readINI reads watchdog.cfg with the shared INI parser (package ini has the
// syntax, the same as seesaw.cfg's) and applies watchdog.cfg's own rules:
// names are case-sensitive, and keys before the first section, duplicate
// sections and duplicate keys are errors rather than silently merged,
// because a supervisor config with an ambiguous entry is more likely a typo
// than intent. It returns the first problem in the file.
func readINI(r io.Reader, file string) ([]*iniSection, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, &ConfigError{File: file, Msg: "read", Err: err}
	}
	secs, synErrs := ini.Parse(file, data)
	var first *ConfigError
	if len(synErrs) > 0 {
		first = &ConfigError{File: file, Line: synErrs[0].Line, Msg: synErrs[0].Msg}
	}
	// The first problem in file order, whether a malformed line or a
	// conflict: sections come in file order and their entries after them.
	problem := func(e *ConfigError) error {
		if first != nil && first.Line < e.Line {
			return first
		}
		return e
	}
	var sections []*iniSection
	seen := map[string]int{}
	for _, s := range secs {
		if s.Name == "" {
			e := s.Entries[0]
			return nil, problem(&ConfigError{File: file, Line: e.Line, Key: e.Key, Msg: "key outside of any section"})
		}
		if prev, ok := seen[s.Name]; ok {
			return nil, problem(&ConfigError{File: file, Line: s.Line, Msg: fmt.Sprintf("section [%s] already defined at line %d", s.Name, prev)})
		}
		seen[s.Name] = s.Line
		cur := &iniSection{name: s.Name, line: s.Line}
		for _, e := range s.Entries {
			if prev, ok := cur.key(e.Key); ok {
				return nil, problem(&ConfigError{File: file, Line: e.Line, Key: e.Key, Msg: fmt.Sprintf("already set at line %d", prev.line)})
			}
			cur.keys = append(cur.keys, iniKey{name: e.Key, value: e.Value, line: e.Line})
		}
		sections = append(sections, cur)
	}
	if first != nil {
		return nil, first
	}
	return sections, nil
}
