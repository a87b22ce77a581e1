package cli

import (
	"context"
	"io"
	"strings"
	"testing"

	"golang.org/x/term"
)

// FuzzLine: any command line, resolved for running or completed and
// explained in the shell, gives an answer or an error, never a panic. The
// engine is absent: names come back empty.
func FuzzLine(f *testing.F) {
	for _, s := range []string{"sh vs", "show v", "o v s def web", "config source disk", "drain backend --timeout 1s x",
		"show vservers --json", "-c", "--engine", "help show", "", " ", "sh\tvs", "\"quoted word\"", "show healthchecks é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e := &env{opts: Options{Name: "seesaw", Engine: "/nonexistent/engine.sock"}}
		resolve(newRoot(e), strings.Fields(line))
		sh := &shell{e: e, ctx: context.Background(), prompt: "> "}
		sh.t = term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{strings.NewReader(""), io.Discard}, "> ")
		sh.help(line)
		nl, np := sh.complete(line, len(line))
		if np < 0 || np > len(nl) {
			t.Fatalf("complete(%q) = %q, %d", line, nl, np)
		}
	})
}
