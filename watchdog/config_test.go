package watchdog

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	const text = `
# comment
; another comment
[default]
args = -log_dir=/var/log/seesaw -v=1
term_timeout = 2s
user = nobody

[b]
binary = /bin/b
dependency = a, c
priority = -5
args = "-name=two words" -re=a\.b "-q=\"x\"" "" -end
group = daemon

[a]
binary: /bin/a

[c]
binary = /bin/c
dependency = a
term_timeout = 300ms
user = root
`
	cfg, err := ParseConfig(strings.NewReader(text), "w.cfg")
	if err != nil {
		t.Fatal(err)
	}
	want := []*ServiceConfig{
		{Name: "b", Binary: "/bin/b", Args: []string{"-name=two words", `-re=a\.b`, `-q="x"`, "", "-end"},
			Dependencies: []string{"a", "c"}, Priority: -5, TermTimeout: 2 * time.Second, User: "nobody", Group: "daemon", Source: "w.cfg:9"},
		{Name: "a", Binary: "/bin/a", Args: []string{"-log_dir=/var/log/seesaw", "-v=1"}, TermTimeout: 2 * time.Second, User: "nobody", Source: "w.cfg:16"},
		{Name: "c", Binary: "/bin/c", Args: []string{"-log_dir=/var/log/seesaw", "-v=1"}, Dependencies: []string{"a"},
			TermTimeout: 300 * time.Millisecond, User: "root", Source: "w.cfg:19"},
	}
	if !reflect.DeepEqual(cfg.Services, want) {
		for i := range cfg.Services {
			t.Errorf("service %d: got %+v", i, *cfg.Services[i])
		}
		t.Fatal("mismatch")
	}
	var order []string
	for _, s := range cfg.StartOrder() {
		order = append(order, s.Name)
	}
	if got := strings.Join(order, " "); got != "a c b" {
		t.Errorf("StartOrder = %s, want a c b", got)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader("[x]\nbinary=/x\n"), "w.cfg")
	if err != nil {
		t.Fatal(err)
	}
	got := *cfg.Services[0]
	want := ServiceConfig{Name: "x", Binary: "/x", TermTimeout: DefaultTermTimeout, Source: "w.cfg:1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		key        string
		msg        string
	}{
		{"missing binary", "[a]\nbinary=/a\n\n[b]\nargs = x\n", 4, "binary", "required in [b]"},
		{"unknown dependency", "[a]\nbinary=/a\ndependency = a2\n", 3, "dependency", `unknown service "a2"`},
		{"cycle", "[a]\nbinary=/a\ndependency=c\n[b]\nbinary=/b\ndependency=a\n[c]\nbinary=/c\ndependency = b\n", 3, "dependency", "cycle a -> c -> b -> a"},
		{"self dependency", "[a]\nbinary=/a\ndependency=a\n", 3, "dependency", "cycle a -> a"},
		{"duplicate dependency", "[a]\nbinary=/a\n[b]\nbinary=/b\ndependency=a,a\n", 5, "dependency", "listed twice"},
		{"priority range", "[a]\nbinary=/a\npriority = 20\n", 3, "priority", "out of range"},
		{"priority number", "[a]\nbinary=/a\npriority = high\n", 3, "priority", "not an integer"},
		{"term_timeout", "[a]\nbinary=/a\n\nterm_timeout = 5\n", 4, "term_timeout", "missing unit"},
		{"term_timeout negative", "[a]\nbinary=/a\nterm_timeout = -1s\n", 3, "term_timeout", "must be positive"},
		{"unknown key", "[a]\nbinary=/a\nrestart = always\n", 3, "restart", "unknown key"},
		{"relative binary", "[a]\nbinary = seesaw_a\n", 2, "binary", "not an absolute path"},
		{"unterminated quote", "[a]\nbinary=/a\nargs = \"-x\n", 3, "args", "unterminated"},
		{"key outside section", "binary=/a\n[a]\n", 1, "binary", "outside of any section"},
		{"duplicate key", "[a]\nbinary=/a\nbinary=/b\n", 3, "binary", "already set at line 2"},
		{"duplicate section", "[a]\nbinary=/a\n[a]\n", 3, "", "already defined at line 1"},
		{"bad header", "[a\nbinary=/a\n", 1, "", "malformed section header"},
		{"no separator", "[a]\nbinary /a\n", 2, "", `want "key = value"`},
		{"bad name", "[a/b]\nbinary=/a\n", 1, "", "may only contain"},
		{"binary in default", "[default]\nbinary=/a\n[a]\nbinary=/a\n", 2, "binary", "not allowed in [default]"},
		{"dependency in default", "[default]\ndependency=a\n[a]\nbinary=/a\n", 2, "dependency", "not allowed in [default]"},
		{"empty user", "[a]\nbinary=/a\nuser=\n", 3, "user", "empty"},
		{"no services", "[default]\nargs=-v\n", 0, "", "no services"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.text), "w.cfg")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q (line %d, key %q), want line %d, key %q, containing %q", err, ce.Line, ce.Key, tc.line, tc.key, tc.msg)
			}
			prefix := "watchdog: config: w.cfg:"
			if tc.line == 0 {
				prefix = "watchdog: config: w.cfg: "
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("err = %q, want prefix %q", err, prefix)
			}
		})
	}
}

// TestParseConfigSharedSyntax pins what watchdog.cfg gained from sharing
// seesaw.cfg's INI parser: comments after a value (but not inside double
// quotes), a byte order mark and CRLF line ends.
func TestParseConfigSharedSyntax(t *testing.T) {
	text := "\uFEFF[a]\r\nbinary = /bin/a # the binary\r\nargs = -x \"-y #1 ;2\" ; two args\r\n"
	cfg, err := ParseConfig(strings.NewReader(text), "w.cfg")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	if s.Binary != "/bin/a" || !reflect.DeepEqual(s.Args, []string{"-x", "-y #1 ;2"}) {
		t.Errorf("binary %q, args %q", s.Binary, s.Args)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc ", []string{"a", "b", "c"}},
		{`-x="a b" c`, []string{"-x=a b", "c"}},
		{`"a\\b" a\b`, []string{`a\b`, `a\b`}},
		{`"" x`, []string{"", "x"}},
		{`"say \"hi\""`, []string{`say "hi"`}},
	}
	for _, tc := range tests {
		got, err := splitArgs(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestShippedConfig parses deploy/watchdog.cfg and checks that it keeps
// Seesaw's services, dependencies, priorities and timeouts.
func TestShippedConfig(t *testing.T) {
	cfg, err := LoadConfig("../deploy/watchdog.cfg")
	if err != nil {
		t.Fatal(err)
	}
	type svc struct {
		deps     string
		priority int
		term     time.Duration
	}
	want := map[string]svc{
		"ncc":         {"", -10, 5 * time.Second},
		"engine":      {"ncc", -10, 10 * time.Second},
		"ha":          {"engine", -15, 5 * time.Second},
		"healthcheck": {"engine", 0, 5 * time.Second},
		"ecu":         {"engine", 0, 5 * time.Second},
	}
	if len(cfg.Services) != len(want) {
		t.Errorf("%d services, want %d", len(cfg.Services), len(want))
	}
	for _, s := range cfg.Services {
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected service %q", s.Name)
			continue
		}
		got := svc{strings.Join(s.Dependencies, ","), s.Priority, s.TermTimeout}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", s.Name, got, w)
		}
		if s.Binary != "/usr/lib/seesaw/seesaw_"+s.Name {
			t.Errorf("%s: binary %s", s.Name, s.Binary)
		}
		if !reflect.DeepEqual(s.Args, []string{"-log_dir=/var/log/seesaw"}) {
			t.Errorf("%s: args %q", s.Name, s.Args)
		}
		if s.User != "" || s.Group != "" {
			t.Errorf("%s: runs as %q:%q, want the watchdog's user", s.Name, s.User, s.Group)
		}
	}
	var order []string
	for _, s := range cfg.StartOrder() {
		order = append(order, s.Name)
	}
	if got := strings.Join(order, " "); got != "ncc engine ecu ha healthcheck" {
		t.Errorf("start order %s", got)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("[a]\nbinary=/a\nargs=\"x y\" z\n[b]\nbinary=/b\ndependency=a\npriority=-3\nterm_timeout=1s\n")
	f.Add("[default]\nuser=nobody\n[a]\nbinary:/a\n")
	f.Add("[a]\nbinary=/a\ndependency=a\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := ParseConfig(strings.NewReader(text), "f.cfg")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			return
		}
		// A config that parses must be startable in some order.
		seen := map[string]bool{}
		for _, s := range cfg.StartOrder() {
			for _, d := range s.Dependencies {
				if !seen[d] {
					t.Fatalf("%s starts before its dependency %s", s.Name, d)
				}
			}
			seen[s.Name] = true
		}
		if len(seen) != len(cfg.Services) {
			t.Fatalf("start order has %d services, config %d", len(seen), len(cfg.Services))
		}
	})
}

// FuzzArgsRoundTrip checks that the log header's rendering of arguments
// reads back, through the args syntax, as the same arguments.
func FuzzArgsRoundTrip(f *testing.F) {
	f.Add("-x=a b", `q"uote`, "")
	f.Add(`back\slash`, `"\`, "\t")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		args := []string{a, b, c}
		for _, s := range args {
			if strings.ContainsAny(s, "\n\r") {
				return // one INI line cannot hold these
			}
		}
		line := commandLine("/bin", args)
		got, err := splitArgs(strings.TrimPrefix(line, "/bin "))
		if err != nil || !reflect.DeepEqual(got, args) {
			t.Fatalf("%q rendered as %q read back as %q, %v", args, line, got, err)
		}
	})
}
