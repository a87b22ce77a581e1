package config

import (
	"fmt"
	"strings"
)

// Issue is one problem found in a config file. Line and Col are 1-based and
// zero when unknown; a cluster.pb problem found after parsing has no line but
// its Msg starts with the path of the offending object instead.
type Issue struct {
	File string
	Line int
	Col  int
	Msg  string
}

// String renders the issue the way compilers do: "file:line:col: msg".
func (i Issue) String() string {
	switch {
	case i.Line > 0 && i.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", i.File, i.Line, i.Col, i.Msg)
	case i.Line > 0:
		return fmt.Sprintf("%s:%d: %s", i.File, i.Line, i.Msg)
	default:
		return fmt.Sprintf("%s: %s", i.File, i.Msg)
	}
}

// Error makes an Issue usable as an error.
func (i Issue) Error() string { return i.String() }

// Warning is an Issue that does not fail a load: something an operator should
// look at, but which Seesaw v2 accepted and which does not change what is
// served.
type Warning = Issue

// Errors is every error found in one load. Error lists them one per line.
type Errors []error

func (e Errors) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As look at each error.
func (e Errors) Unwrap() []error { return e }

// Err returns nil when there are no errors, else e. It avoids the classic
// non-nil interface holding an empty slice.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}
