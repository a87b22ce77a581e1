package lab

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"time"
)

// TestArgs is what the lab reads from the flags go test hands a test
// binary.
type TestArgs struct {
	Run     string        // -test.run
	Timeout time.Duration // -test.timeout
	// Other is set when the binary is asked for more than tests: benchmarks,
	// fuzzing or a listing.
	Other bool
}

// ParseTestArgs reads the flags of a test binary's command line, in the
// forms go test writes them (-test.run=X) and the forms a person types
// (-test.run X, --test.run=X).
func ParseTestArgs(args []string) TestArgs {
	var t TestArgs
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes := func() string {
			if hasVal {
				return val
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch name {
		case "test.run":
			t.Run = takes()
		case "test.timeout":
			if d, err := time.ParseDuration(takes()); err == nil {
				t.Timeout = d
			}
		case "test.bench", "test.fuzz", "test.list":
			if v := takes(); v != "" {
				t.Other = true
			}
		}
	}
	return t
}

// topLevel is the part of a -test.run pattern that matches top-level test
// names: go splits the pattern on slashes outside brackets and parentheses,
// one element per level of subtests.
func topLevel(pattern string) string {
	depth := 0
	for i, c := range pattern {
		switch c {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		case '/':
			if depth == 0 {
				return pattern[:i]
			}
		}
	}
	return pattern
}

// HasTestsToRun reports whether the test binary would run any test with
// these arguments, by asking it to list the tests that match. A binary
// with nothing to run needs no guest: booting one per package would make
// `go test -exec ... -run TestLab ./...` take minutes under emulation.
// When in doubt it says yes.
func HasTestsToRun(ctx context.Context, binary string, args []string) bool {
	t := ParseTestArgs(args)
	if t.Run == "" || t.Other {
		return true
	}
	out, err := exec.CommandContext(ctx, binary, "-test.list", topLevel(t.Run)).Output()
	if err != nil {
		return true
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "ok ") {
			return true
		}
	}
	return false
}
