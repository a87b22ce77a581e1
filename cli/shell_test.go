package cli_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/seesawlb/seesaw/engine"
	"github.com/seesawlb/seesaw/proto/ipc"

	hapb "github.com/seesawlb/seesaw/proto/ha"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// screen is a small VT100: enough of one to render what the line editor
// and the commands write (text, CR, LF, backspace, cursor moves, erase to
// end of line) as the lines a person would see. It keeps every line, so
// the whole session is its transcript.
type screen struct {
	width    int
	lines    [][]rune
	row, col int
}

func (s *screen) put(r rune) {
	if s.col >= s.width {
		s.row, s.col = s.row+1, 0
	}
	s.grow()
	l := s.lines[s.row]
	for len(l) <= s.col {
		l = append(l, ' ')
	}
	l[s.col] = r
	s.lines[s.row] = l
	s.col++
}

func (s *screen) grow() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
}

func (s *screen) write(b []byte) {
	for len(b) > 0 {
		if b[0] == 0x1b && len(b) > 1 && b[1] == '[' {
			i := 2
			for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == ';' || b[i] == '?') {
				i++
			}
			if i == len(b) {
				return
			}
			n, err := strconv.Atoi(strings.Split(string(b[2:i]), ";")[0])
			if err != nil || n == 0 {
				n = 1
			}
			switch b[i] {
			case 'A':
				s.row = max(0, s.row-n)
			case 'B':
				s.row += n
			case 'C':
				s.col += n
			case 'D':
				s.col = max(0, s.col-n)
			case 'K':
				s.grow()
				if s.col < len(s.lines[s.row]) {
					s.lines[s.row] = s.lines[s.row][:s.col]
				}
			}
			b = b[i+1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		switch r {
		case '\r':
			s.col = 0
		case '\n':
			s.row++
			s.grow()
		case '\b':
			s.col = max(0, s.col-1)
		case 0x07, 0x1b:
		default:
			s.put(r)
		}
	}
}

func (s *screen) String() string {
	var b strings.Builder
	for _, l := range s.lines {
		b.WriteString(strings.TrimRight(string(l), " ") + "\n")
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// tty is the CLI running on a pseudo-terminal.
type tty struct {
	t    *testing.T
	pty  *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	scr  screen
	done chan error
}

func (te *testEngine) startTTY(home string, extraEnv ...string) *tty {
	te.t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SEESAW_CLI_TEST_MAIN=1", "SEESAW_CLI_TEST_ENGINE="+te.sock, "HOME="+home,
		"SEESAW_HISTORY="+filepath.Join(home, "history"), "NO_COLOR=1", "TERM=xterm")
	cmd.Env = append(cmd.Env, extraEnv...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 80})
	must(te.t, err)
	tt := &tty{t: te.t, pty: f, cmd: cmd, scr: screen{width: 80}, done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			tt.mu.Lock()
			tt.scr.write(buf[:n])
			tt.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { tt.done <- cmd.Wait() }()
	te.t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
	})
	return tt
}

func (tt *tty) screen() string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.scr.String()
}

// expect waits until the screen shows want n times in all.
func (tt *tty) expect(want string, n int) {
	tt.t.Helper()
	end := time.Now().Add(30 * time.Second)
	for strings.Count(tt.screen(), want) < n {
		if time.Now().After(end) {
			tt.t.Fatalf("the screen never showed %q %d times:\n%s", want, n, tt.screen())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// keys types s.
func (tt *tty) keys(s string) {
	tt.t.Helper()
	if _, err := io.WriteString(tt.pty, s); err != nil {
		tt.t.Fatal(err)
	}
}

func (tt *tty) wait() error {
	select {
	case err := <-tt.done:
		return err
	case <-time.After(30 * time.Second):
		tt.t.Fatalf("the CLI did not exit:\n%s", tt.screen())
		return nil
	}
}

// prompt is the prompt as the screen shows it (trailing blanks trimmed).
const prompt = "root@example>"

// TestShell drives the interactive shell through a terminal: Tab, ?, an
// ambiguous prefix, names, history across sessions, Ctrl-C.
func TestShell(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the golden prompt is root's")
	}
	te := startEngine(t)
	home := t.TempDir()
	tt := te.startTTY(home)
	// step types keys and waits until waitFor shows once more.
	step := func(keys string, waitFor string) {
		t.Helper()
		scr := tt.screen()
		n, pn := strings.Count(scr, waitFor), strings.Count(scr, prompt)
		tt.keys(keys)
		if waitFor != "" {
			tt.expect(waitFor, n+1)
		}
		if strings.HasSuffix(keys, "\r") {
			// Keys typed while a command runs would be echoed by the
			// terminal in its output: wait for the next prompt.
			tt.expect(prompt, pn+1)
		}
	}
	tt.expect(prompt, 1)
	// Tab completes a unique prefix; Enter runs it.
	step("sh vs\t", "sh vservers")
	step("\r", prompt)
	// ? lists what may follow, a line of help each; Ctrl-U clears.
	step("show v?", "Every daemon's version")
	step("\x15", "")
	// An ambiguous prefix lists the candidates.
	step("sh v\r", "ambiguous")
	// Tab on names: a common prefix lists them, one more letter completes.
	step("sh ba web\t", "web2.example.com.")
	step("1\t", "sh ba web1.example.com.")
	step("\r", "Backend web1.example.com.")
	// ? after a complete command.
	step("show destinations ?", "<cr>")
	step("\x15", "")
	// The up arrow recalls a previous line.
	step("\x1b[A\x1b[A\x1b[A", "")
	step("\r", "2 vservers:")
	// Ctrl-C leaves.
	tt.keys("\x03")
	if err := tt.wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
	first := tt.screen()

	// A second session has the first one's history.
	tt2 := te.startTTY(home)
	tt2.expect(prompt, 1)
	tt2.keys("\x1b[A")
	tt2.expect(prompt+" sh vs", 1)
	tt2.keys("\x15help\r")
	tt2.expect(prompt, 2)
	tt2.keys("\x04")
	if err := tt2.wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
	golden(t, "shell.golden", first+"--- a second session\n"+tt2.screen())
}

// TestShellDrainCtrlC: Ctrl-C while drain waits stops the wait, leaves
// the backend at weight 0, and the shell goes on.
func TestShellDrainCtrlC(t *testing.T) {
	te := startEngine(t)
	te.ncc.setConns("198.51.100.12:80", 4)
	tt := te.startTTY(t.TempDir())
	tt.expect("example>", 1)
	tt.keys("drain backend web2.example.com. --interval 10ms\r")
	tt.expect("4 active connection(s)", 1)
	tt.keys("\x03")
	tt.expect("is left at weight 0 (override drain), not", 1)
	tt.expect("example>", 2)
	if !strings.Contains(te.ipvs.Save(), "-r 198.51.100.12:80 -m -w 0") {
		t.Errorf("not at weight 0:\n%s", te.ipvs.Save())
	}
	tt.keys("exit\r")
	if err := tt.wait(); err != nil {
		t.Errorf("exit: %v\n%s", err, tt.screen())
	}
}

// TestShellBanner: the not-master warning; the engine down; the socket
// not permitted.
func TestShellBanner(t *testing.T) {
	te := startEngine(t)
	must(t, te.haSend(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
		From: seesawpb.HAState_HA_STATE_LEADER, To: seesawpb.HAState_HA_STATE_BACKUP, Reason: "test"}}}))
	tt := te.startTTY(t.TempDir())
	tt.expect("example>", 1)
	s := tt.screen()
	if !strings.HasPrefix(s, "Seesaw CLI - Engine version dev\nWARNING: This seesaw is not currently the master (it is backup).\n") {
		t.Errorf("banner:\n%s", s)
	}
	tt.keys("quit\r")
	if err := tt.wait(); err != nil {
		t.Errorf("exit: %v", err)
	}

	tt = te.startTTY(t.TempDir(), "SEESAW_CLI_TEST_ENGINE="+te.dir+"/none/engine.sock")
	err := tt.wait()
	tt.expect("seesaw: the engine is not running: no socket at", 1)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("engine down: exit %v", err)
	}

	if os.Getuid() != 0 {
		return
	}
	bin := filepath.Join(te.dir, "seesaw-shell")
	data, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	out, code := te.asUserBin(bin, nobody, nil)
	if code != 1 || !strings.Contains(out, "you need group gid 4242 to talk to the engine") {
		t.Errorf("not permitted [%d]: %s", code, out)
	}
	fmt.Fprint(io.Discard, out)
}

// TestColour: state words are coloured on a terminal, never with NO_COLOR,
// never when the output is not a terminal.
func TestColour(t *testing.T) {
	te := startEngine(t)
	raw := func(env ...string) string {
		cmd := exec.Command(os.Args[0], "show", "vservers")
		cmd.Env = append(os.Environ(), "SEESAW_CLI_TEST_MAIN=1", "SEESAW_CLI_TEST_ENGINE="+te.sock, "TERM=xterm")
		cmd.Env = append(cmd.Env, env...)
		f, err := pty.Start(cmd)
		must(t, err)
		defer f.Close()
		b, _ := io.ReadAll(f) // ends with EIO when the CLI exits
		cmd.Wait()
		return string(b)
	}
	if s := raw(); !strings.Contains(s, "\x1b[32mup\x1b[0m") {
		t.Errorf("no colour on a terminal: %q", s)
	}
	if s := raw("NO_COLOR=1"); strings.Contains(s, "\x1b[") || !strings.Contains(s, "web@example") {
		t.Errorf("colour with NO_COLOR: %q", s)
	}
	cmd := exec.Command(os.Args[0], "show", "vservers")
	cmd.Env = append(os.Environ(), "SEESAW_CLI_TEST_MAIN=1", "SEESAW_CLI_TEST_ENGINE="+te.sock, "TERM=xterm")
	out, err := cmd.Output()
	if err != nil || strings.Contains(string(out), "\x1b[") || !strings.Contains(string(out), "web@example") {
		t.Errorf("not a terminal: %v %q", err, out)
	}
}

// TestScript: without a terminal the shell runs the lines of stdin.
func TestScript(t *testing.T) {
	te := startEngine(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SEESAW_CLI_TEST_MAIN=1", "SEESAW_CLI_TEST_ENGINE="+te.sock)
	cmd.Stdin = strings.NewReader("sh vs web@example\nshow v\nconfig source\nexit\nshow vservers\n")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err != nil || !strings.Contains(s, "Vserver web@example") || !strings.Contains(s, `ambiguous command "v"`) ||
		!strings.Contains(s, "Config source is disk") || strings.Contains(s, "VSERVER ") {
		t.Errorf("script: %v\n%s", err, s)
	}
}

// TestShellNoConfig: an engine with no config loaded still gets a shell,
// which says why and shows the rejected config.
func TestShellNoConfig(t *testing.T) {
	dir, err := os.MkdirTemp("", "seesaw-cli-test-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	te := &testEngine{t: t, dir: dir, sock: filepath.Join(dir, "engine", "engine.sock")}
	e := engine.New(engine.Config{Socket: te.sock, EngineConf: filepath.Join(dir, "seesaw.cfg"), ClusterConf: filepath.Join(dir, "cluster.pb"), WatchInterval: -1})
	if err := e.Reload(); err == nil {
		t.Fatal("a missing config loaded")
	}
	s, err := ipc.NewServer(ipc.ServerOptions{Path: te.sock})
	must(t, err)
	e.Register(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	tt := te.startTTY(t.TempDir())
	tt.expect("@unknown>", 1)
	tt.keys("config status\r")
	tt.expect("Rejected at", 1)
	tt.expect("@unknown>", 2)
	tt.keys("exit\r")
	if err := tt.wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
	if s := tt.screen(); !strings.Contains(s, "WARNING: engine: no config loaded:") {
		t.Errorf("no warning:\n%s", s)
	}
}
