package config

import (
	"strings"

	"github.com/seesawlb/seesaw/engine/config/ini"
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

// parseINI reads seesaw.cfg with the shared INI parser (package ini has the
// rules, which are goconf's, as Seesaw v2 used) and applies seesaw.cfg's own:
// section and key names are case-insensitive and returned in lower case, and
// a repeated section is returned once, with the entries of every occurrence.
// Every malformed line is reported, not just the first.
func parseINI(file string, data []byte) ([]*iniSection, Errors) {
	secs, synErrs := ini.Parse(file, data)
	var errs Errors
	for _, e := range synErrs {
		errs = append(errs, Issue{File: e.File, Line: e.Line, Msg: e.Msg})
	}
	var sections []*iniSection
	byName := map[string]*iniSection{}
	for _, s := range secs {
		name := strings.ToLower(s.Name)
		cur := byName[name]
		if cur == nil {
			cur = &iniSection{Name: name, Line: s.Line}
			byName[name] = cur
			sections = append(sections, cur)
		}
		for _, e := range s.Entries {
			cur.Entries = append(cur.Entries, iniEntry{Key: strings.ToLower(e.Key), Value: e.Value, Line: e.Line})
		}
	}
	return sections, errs
}
