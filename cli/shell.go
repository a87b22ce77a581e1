package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seesawlb/seesaw/engine/view"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	"github.com/seesawlb/seesaw/watchdog"
)

// The interactive shell, as Seesaw's: a banner with the engine's version
// and a warning when this node is not the master, the prompt
// <user>@<cluster>>, every word by unique prefix, Tab to complete words
// and names, ? to list what may follow with a line of help each, and a
// history kept across sessions.
//
// The line editor is golang.org/x/term's Terminal: kept by the Go team,
// pure Go, the editor Seesaw itself used (as x/crypto/ssh/terminal); it
// has the Emacs keys (Ctrl-A/E/U/W/K, arrows, Ctrl-D), a pluggable
// History, and a callback on every key, which is what ? needs. The
// command tree stays cobra's: each line runs on a fresh tree.

// historyMax bounds the history file.
const historyMax = 1000

// historyFile is where the shell keeps its history: $SEESAW_HISTORY, or
// ~/.seesaw_history.
func historyFile() string {
	if p := os.Getenv("SEESAW_HISTORY"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".seesaw_history")
}

// fileHistory is term.History kept in a file: loaded at start, each new
// line appended.
type fileHistory struct {
	path    string
	entries []string // oldest first
}

func loadHistory(path string) *fileHistory {
	h := &fileHistory{path: path}
	if path == "" {
		return h
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return h
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			h.entries = append(h.entries, l)
		}
	}
	if len(h.entries) > historyMax {
		h.entries = h.entries[len(h.entries)-historyMax:]
		h.rewrite()
	}
	return h
}

func (h *fileHistory) rewrite() {
	os.WriteFile(h.path, []byte(strings.Join(h.entries, "\n")+"\n"), 0o600)
}

func (h *fileHistory) Add(entry string) {
	if strings.TrimSpace(entry) == "" || len(h.entries) > 0 && h.entries[len(h.entries)-1] == entry {
		return
	}
	h.entries = append(h.entries, entry)
	if h.path == "" {
		return
	}
	if len(h.entries) > historyMax {
		h.entries = h.entries[1:]
		h.rewrite()
		return
	}
	f, err := os.OpenFile(h.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintln(f, entry)
	f.Close()
}

func (h *fileHistory) Len() int { return len(h.entries) }

func (h *fileHistory) At(i int) string { return h.entries[len(h.entries)-1-i] }

// runShell runs the interactive shell on the terminal, or reads command
// lines from stdin when it is not one.
func runShell(cmd *cobra.Command, e *env) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	c, err := e.client()
	if err != nil {
		return err // not running, or not permitted
	}
	var warning string
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cs, err := c.ClusterStatus(cctx, &enginepb.ClusterStatusRequest{})
	cancel()
	if err != nil {
		if status.Code(err) != codes.FailedPrecondition {
			return e.rpcErr("seesaw", err)
		}
		// No config loaded: the shell is how the operator finds out why
		// and reloads one.
		warning = status.Convert(err).Message() + " (see config status; fix it and config reload)"
		cs = &enginepb.ClusterStatusResponse{Version: ipc.Version, Site: "unknown"}
		if vr, verr := c.Versions(ctx, &enginepb.VersionsRequest{}); verr == nil && len(vr.Components) > 0 {
			cs.Version = vr.Components[0].Version
		}
	}
	// The shell swallows Ctrl-C while a command runs (a command that
	// waits, such as drain, takes it as its own interrupt).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	sh := &shell{e: e, ctx: ctx, out: out, errOut: errOut}
	in, isFile := cmd.InOrStdin().(*os.File)
	if !isFile || !term.IsTerminal(int(in.Fd())) {
		return sh.script(cmd.InOrStdin())
	}
	fmt.Fprintf(out, "Seesaw CLI - Engine version %s\n", cs.Version)
	if warning != "" {
		say(out, 2, "WARNING: "+warning)
	} else if cs.HaState != seesawpb.HAState_HA_STATE_LEADER {
		fmt.Fprintf(out, "WARNING: This seesaw is not currently the master (it is %s).\n", view.HAWord(cs.HaState))
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return sh.interactive(in, fmt.Sprintf("%s@%s> ", name, cs.Site))
}

type shell struct {
	prompt string
	e      *env
	ctx    context.Context
	out    io.Writer
	errOut io.Writer
	t      *term.Terminal
}

// opts are the options of a shell line's tree.
func (sh *shell) env() *env {
	o := sh.e.opts
	o.Shell = true
	return &env{opts: o, engine: sh.e.engine}
}

// exec runs one line; it returns errExit when the line leaves the shell.
func (sh *shell) exec(line string, out, errOut io.Writer) error {
	args, err := watchdog.SplitArgs(line)
	if err != nil {
		fmt.Fprintf(errOut, "%v\n", err)
		return nil
	}
	if len(args) == 0 {
		return nil
	}
	err = execLine(sh.ctx, sh.env(), args, strings.NewReader(""), out, errOut)
	if errors.Is(err, errExit) {
		return errExit
	}
	if err != nil {
		fmt.Fprintf(errOut, "%v\n", err)
	}
	return nil
}

// script runs the lines of r, as the shell would, without a prompt.
func (sh *shell) script(r io.Reader) error {
	s := bufio.NewScanner(r)
	for s.Scan() {
		if sh.exec(s.Text(), sh.out, sh.errOut) == errExit {
			return nil
		}
	}
	return s.Err()
}

// interactive reads lines from the terminal f with the line editor.
func (sh *shell) interactive(f *os.File, prompt string) error {
	fd := int(f.Fd())
	rw := struct {
		io.Reader
		io.Writer
	}{f, sh.out}
	sh.t = term.NewTerminal(rw, prompt)
	sh.prompt = prompt
	if w, h, err := term.GetSize(fd); err == nil {
		sh.t.SetSize(w, h)
	}
	sh.t.History = loadHistory(historyFile())
	sh.t.AutoCompleteCallback = sh.key
	for {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("seesaw: the terminal: %w", err)
		}
		line, err := sh.t.ReadLine()
		term.Restore(fd, old)
		if err == io.EOF {
			fmt.Fprintln(sh.out)
			return nil
		}
		if err != nil {
			return err
		}
		if sh.exec(line, sh.out, sh.out) == errExit {
			return nil
		}
	}
}

// key is the line editor's callback on every key: Tab completes, ?
// lists what may follow.
func (sh *shell) key(line string, pos int, key rune) (string, int, bool) {
	switch key {
	case '\t':
		nl, np := sh.complete(line, pos)
		return nl, np, true
	case '?':
		// As Seesaw: the line as typed, what may follow, the line again.
		fmt.Fprint(sh.t, sh.prompt+line+"?\n"+sh.help(line[:pos]))
		return line, pos, true
	}
	return "", 0, false
}

// context walks the words before the cursor: the command they reach, the
// arguments after it, the word being typed, and an error for a word that
// names nothing.
func (sh *shell) context(before string) (*cobra.Command, []string, string, error) {
	words := strings.Fields(before)
	partial := ""
	if len(words) > 0 && !strings.HasSuffix(before, " ") {
		partial, words = words[len(words)-1], words[:len(words)-1]
	}
	root := newRoot(sh.env())
	root.InitDefaultHelpCmd()
	cur := root
	var args []string
	for _, w := range words {
		if strings.HasPrefix(w, "-") {
			args = append(args, w)
			continue
		}
		if cur.HasSubCommands() {
			m, cands := match(cur, w)
			if m == nil {
				if len(cands) > 1 {
					return nil, nil, "", fmt.Errorf("ambiguous command %q: could be %s", w, strings.Join(cands, ", "))
				}
				return nil, nil, "", fmt.Errorf("unknown command %q (try: %s)", w, strings.Join(subNames(cur), ", "))
			}
			cur = m
			continue
		}
		args = append(args, w)
	}
	return cur, args, partial, nil
}

// candidate is a word that may follow, with a line of help.
type candidate struct{ word, help string }

func (sh *shell) candidates(cur *cobra.Command, args []string, partial string) []candidate {
	var out []candidate
	if cur.HasSubCommands() {
		for _, s := range cur.Commands() {
			if (s.IsAvailableCommand() || s.Name() == "help") && strings.HasPrefix(s.Name(), partial) {
				out = append(out, candidate{s.Name(), s.Short})
			}
		}
		return out
	}
	if strings.HasPrefix(partial, "-") {
		cur.Flags().VisitAll(func(f *pflag.Flag) {
			if n := "--" + f.Name; strings.HasPrefix(n, partial) && n != "--help" {
				out = append(out, candidate{n, f.Usage})
			}
		})
		return out
	}
	words := slices.Clone(cur.ValidArgs)
	if cur.ValidArgsFunction != nil {
		cur.SetContext(sh.ctx)
		comps, _ := cur.ValidArgsFunction(cur, args, partial)
		words = append(words, comps...)
	}
	for _, w := range words {
		if strings.HasPrefix(w, partial) {
			out = append(out, candidate{w, ""})
		}
	}
	return out
}

// complete is Tab: the word being typed completed to its only candidate,
// or to the candidates' common prefix; with no progress, the candidates
// are listed.
func (sh *shell) complete(line string, pos int) (string, int) {
	before, after := line[:pos], line[pos:]
	cur, args, partial, err := sh.context(before)
	if err != nil {
		fmt.Fprintf(sh.t, "%v\n", err)
		return line, pos
	}
	cands := sh.candidates(cur, args, partial)
	if len(cands) == 0 {
		return line, pos
	}
	var words []string
	for _, c := range cands {
		words = append(words, c.word)
	}
	common := words[0]
	for _, w := range words[1:] {
		for !strings.HasPrefix(w, common) {
			common = common[:len(common)-1]
		}
	}
	if len(words) == 1 {
		common += " "
	}
	if common == partial {
		fmt.Fprint(sh.t, sh.prompt+line+"\n"+columns(words))
		return line, pos
	}
	nb := before[:len(before)-len(partial)] + common
	return nb + after, len(nb)
}

// help is ?: what may follow the words before the cursor, a line each.
func (sh *shell) help(before string) string {
	cur, args, partial, err := sh.context(before)
	if err != nil {
		return err.Error() + "\n"
	}
	var b strings.Builder
	cands := sh.candidates(cur, args, partial)
	t := newTable(nil)
	for i, c := range cands {
		if i == 50 {
			t.row("  ...", fmt.Sprintf("and %d more", len(cands)-50))
			break
		}
		t.row("  "+c.word, c.help)
	}
	if !cur.HasSubCommands() && partial == "" {
		if use := strings.SplitN(cur.Use, " ", 2); len(use) == 2 && len(args) == 0 {
			t.row("  "+use[1], "")
		}
		t.row("  <cr>", "run "+cur.CommandPath()[len(cur.Root().Name())+1:])
	}
	if len(t.rows) == 0 {
		return "  (nothing may follow)\n"
	}
	t.write(&b, false)
	return b.String()
}

// columns lays words out in columns within Width.
func columns(words []string) string {
	w := 0
	for _, s := range words {
		w = max(w, len(s)+2)
	}
	per := max(1, Width/w)
	var b strings.Builder
	for i, s := range words {
		b.WriteString(s)
		if (i+1)%per == 0 || i == len(words)-1 {
			b.WriteString("\n")
		} else {
			b.WriteString(strings.Repeat(" ", w-len(s)))
		}
	}
	return b.String()
}
