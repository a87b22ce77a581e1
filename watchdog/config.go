package watchdog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultTermTimeout is how long a service gets between SIGTERM and SIGKILL
// when its section (and [default]) set no term_timeout; Seesaw's value.
const DefaultTermTimeout = 5 * time.Second

// defaultSection is the section whose keys apply to every service. Seesaw
// skips it; we honour it.
const defaultSection = "default"

// ServiceConfig is one service of watchdog.cfg after [default] has been
// applied.
type ServiceConfig struct {
	Name   string // section name; the process runs as argv[0] "seesaw_<Name>"
	Binary string // absolute path of the executable
	Args   []string
	// Dependencies must be running before this service starts, and are
	// stopped only after this service has stopped.
	Dependencies []string
	Priority     int // nice value, -20..19
	TermTimeout  time.Duration
	User         string // user name or numeric uid; empty runs as the watchdog's user
	Group        string // group name or numeric gid; overrides User's primary group
	Source       string // "file:line" of the section header, for error messages
}

// Config is a parsed watchdog.cfg.
type Config struct {
	// Services in file order.
	Services []*ServiceConfig
}

// Service returns the named service, or nil.
func (c *Config) Service(name string) *ServiceConfig {
	for _, s := range c.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ConfigError is a problem in watchdog.cfg, located by file, line and key.
type ConfigError struct {
	File string
	Line int    // 0 when the problem is not on one line
	Key  string // empty when the problem is not about one key
	Msg  string
	Err  error // underlying error, if any
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("watchdog: config: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads and parses the watchdog.cfg at path.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("watchdog: config: %w", err)
	}
	defer f.Close()
	return ParseConfig(f, path)
}

// ParseConfig parses watchdog.cfg text; file names the source in errors.
//
// The format is Seesaw's: one INI section per service with the keys binary
// (required), args, dependency, priority, term_timeout and user. Additions:
// args may double-quote words ("a b" is one argument; \" and \\ escape inside
// quotes); dependency may list several services separated by commas or
// spaces; group sets the primary group; and the keys of a [default] section
// (args, priority, term_timeout, user, group) apply to every service that
// does not set them itself. Unknown keys, unknown dependencies and
// dependency cycles are errors.
func ParseConfig(r io.Reader, file string) (*Config, error) {
	sections, err := readINI(r, file)
	if err != nil {
		return nil, err
	}
	base := ServiceConfig{TermTimeout: DefaultTermTimeout}
	for _, sec := range sections {
		if sec.name == defaultSection {
			if err := applyKeys(&base, sec, file, true); err != nil {
				return nil, err
			}
		}
	}
	cfg := &Config{}
	depLine := map[string]int{}
	for _, sec := range sections {
		if sec.name == defaultSection {
			continue
		}
		if err := checkName(sec.name); err != nil {
			return nil, &ConfigError{File: file, Line: sec.line, Msg: fmt.Sprintf("section [%s]: %v", sec.name, err)}
		}
		svc := base
		svc.Args = append([]string(nil), base.Args...)
		svc.Name = sec.name
		svc.Source = fmt.Sprintf("%s:%d", file, sec.line)
		if err := applyKeys(&svc, sec, file, false); err != nil {
			return nil, err
		}
		if svc.Binary == "" {
			return nil, &ConfigError{File: file, Line: sec.line, Key: "binary", Msg: fmt.Sprintf("required in [%s]", sec.name)}
		}
		if k, ok := sec.key("dependency"); ok {
			depLine[sec.name] = k.line
		}
		cfg.Services = append(cfg.Services, &svc)
	}
	if len(cfg.Services) == 0 {
		return nil, &ConfigError{File: file, Msg: "no services defined"}
	}
	for _, svc := range cfg.Services {
		for _, d := range svc.Dependencies {
			if cfg.Service(d) == nil {
				return nil, &ConfigError{File: file, Line: depLine[svc.Name], Key: "dependency", Msg: fmt.Sprintf("[%s] depends on unknown service %q", svc.Name, d)}
			}
		}
	}
	if cycle := findCycle(cfg); cycle != nil {
		return nil, &ConfigError{File: file, Line: depLine[cycle[0]], Key: "dependency", Msg: "cycle " + strings.Join(cycle, " -> ")}
	}
	return cfg, nil
}

// applyKeys sets svc's fields from sec's keys.
func applyKeys(svc *ServiceConfig, sec *iniSection, file string, isDefault bool) error {
	for _, k := range sec.keys {
		bad := func(format string, args ...any) error {
			return &ConfigError{File: file, Line: k.line, Key: k.name, Msg: fmt.Sprintf(format, args...)}
		}
		switch k.name {
		case "binary":
			if isDefault {
				return bad("not allowed in [default]")
			}
			if !filepath.IsAbs(k.value) {
				return bad("%q is not an absolute path", k.value)
			}
			svc.Binary = filepath.Clean(k.value)
		case "args":
			args, err := splitArgs(k.value)
			if err != nil {
				return bad("%v", err)
			}
			svc.Args = args
		case "dependency":
			if isDefault {
				return bad("not allowed in [default]")
			}
			svc.Dependencies = nil
			seen := map[string]bool{}
			for _, d := range strings.FieldsFunc(k.value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
				if seen[d] {
					return bad("%q listed twice", d)
				}
				seen[d] = true
				svc.Dependencies = append(svc.Dependencies, d)
			}
		case "priority":
			p, err := strconv.Atoi(k.value)
			if err != nil {
				return bad("%q is not an integer", k.value)
			}
			if p < -20 || p > 19 {
				return bad("%d out of range -20..19", p)
			}
			svc.Priority = p
		case "term_timeout":
			d, err := time.ParseDuration(k.value)
			if err != nil {
				return bad("%v", err)
			}
			if d <= 0 {
				return bad("%s must be positive", k.value)
			}
			svc.TermTimeout = d
		case "user":
			if k.value == "" {
				return bad("empty")
			}
			svc.User = k.value
		case "group":
			if k.value == "" {
				return bad("empty")
			}
			svc.Group = k.value
		default:
			return bad("unknown key")
		}
	}
	return nil
}

// checkName accepts service names that are safe in file names and argv[0].
func checkName(name string) error {
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return fmt.Errorf("name may only contain letters, digits, '_', '-' and '.'")
		}
	}
	return nil
}

// SplitArgs is splitArgs, shared with the CLI's -c "<command>" so that the
// two read quotes alike.
func SplitArgs(s string) ([]string, error) { return splitArgs(s) }

// splitArgs splits s at whitespace. Double quotes group words, and inside
// them a backslash escapes '"' and '\'; outside quotes a backslash is literal
// so regular expressions in flags pass through untouched.
func splitArgs(s string) ([]string, error) {
	var (
		args   []string
		cur    strings.Builder
		inWord bool
		quoted bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated double quote")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// findCycle returns a dependency cycle as a list of names whose first and
// last elements are equal, or nil when the graph is acyclic.
func findCycle(cfg *Config) []string {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch state[name] {
		case visiting:
			for i, n := range stack {
				if n == name {
					return append(append([]string(nil), stack[i:]...), name)
				}
			}
		case done:
			return nil
		}
		state[name] = visiting
		stack = append(stack, name)
		for _, d := range cfg.Service(name).Dependencies {
			if c := visit(d); c != nil {
				return c
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, s := range cfg.Services {
		if c := visit(s.Name); c != nil {
			return c
		}
	}
	return nil
}

// StartOrder returns the services so that each comes after all of its
// dependencies, keeping file order where the dependencies allow. The
// supervisor does not need it (services wait for their dependencies
// themselves), but it is the order in which they come up and what tools
// display.
func (c *Config) StartOrder() []*ServiceConfig {
	var order []*ServiceConfig
	placed := map[string]bool{}
	var place func(s *ServiceConfig)
	place = func(s *ServiceConfig) {
		if placed[s.Name] {
			return
		}
		placed[s.Name] = true
		for _, d := range s.Dependencies {
			if ds := c.Service(d); ds != nil {
				place(ds)
			}
		}
		order = append(order, s)
	}
	for _, s := range c.Services {
		place(s)
	}
	return order
}
