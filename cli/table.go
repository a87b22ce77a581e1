package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/view"
)

// Width is the screen width every table fits in.
const Width = 80

// table is rows of cells, written with each column as wide as its widest
// cell, two spaces apart. When the rows do not fit in Width, the widest
// column is cut (its cells end in "~") until they do.
type table struct {
	header []string
	rows   [][]string
	// sev, when set, colours the row's cell in column sevCol.
	sev    []view.Severity
	sevCol int
	// flex, when set, is the column cut first (down to 8 runes), such
	// as a free-text message, so that names keep whole.
	flex int
}

func newTable(header []string) *table { return &table{header: header, sevCol: -1, flex: -1} }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells); t.sev = append(t.sev, -1) }

// srow is a row whose cell col is a state word of severity s.
func (t *table) srow(s view.Severity, col int, cells ...string) {
	t.rows = append(t.rows, cells)
	t.sev = append(t.sev, s)
	t.sevCol = col
}

func (t *table) write(w io.Writer, color bool) {
	t.dropEmpty()
	all := t.rows
	if t.header != nil {
		all = append([][]string{t.header}, t.rows...)
	}
	n := 0
	for _, r := range all {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	for _, r := range all {
		if len(r) == 1 && n > 1 {
			continue // a heading row spans the table
		}
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	total := func() int {
		s := 0
		for i, w := range widths {
			s += w
			if i > 0 {
				s += 2
			}
		}
		return s
	}
	if t.flex >= 0 && t.flex < len(widths) {
		for total() > Width && widths[t.flex] > 8 {
			widths[t.flex]--
		}
	}
	for total() > Width {
		wi := 0
		for i := range widths {
			if widths[i] > widths[wi] {
				wi = i
			}
		}
		if widths[wi] <= 6 {
			break
		}
		widths[wi]--
	}
	for ri, r := range all {
		var b strings.Builder
		last := len(r) - 1
		for last > 0 && r[last] == "" {
			last--
		}
		for i := 0; i <= last; i++ {
			c := r[i]
			if last > 0 || n == 1 {
				c = cut(c, widths[i])
			}
			pad := widths[i] - utf8.RuneCountInString(c)
			hdr := t.header != nil && ri == 0
			if color && hdr {
				c = "\x1b[1m" + c + "\x1b[0m"
			} else if color && i == t.sevCol {
				si := ri
				if t.header != nil {
					si--
				}
				c = paint(c, t.sev[si])
			}
			b.WriteString(c)
			if i < last {
				b.WriteString(strings.Repeat(" ", pad+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// cut shortens s to n runes, marking the cut with "~".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "~"
}

// paint colours a state word by its severity.
func paint(s string, sev view.Severity) string {
	code := ""
	switch sev {
	case view.OK:
		code = "32" // green
	case view.Off:
		code = "33" // yellow
	case view.Degraded:
		code = "33;1"
	case view.Down:
		code = "31;1" // red
	default:
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// word colours a state word when colour is on.
func (e *env) word(s string, sev view.Severity) string {
	if !e.opts.Color {
		return s
	}
	return paint(s, sev)
}

// writeJSON writes m as indented JSON with the proto field names. The
// output is stable: protojson's deliberately varying spaces are taken out
// and the indentation is always two spaces.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	return writeRawJSON(w, b)
}

func writeRawJSON(w io.Writer, b []byte) error {
	var c, out bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return err
	}
	if err := json.Indent(&out, c.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// writeJSONList writes messages as one JSON array.
func writeJSONList[T proto.Message](w io.Writer, ms []T) error {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			return err
		}
		b.Write(j)
	}
	b.WriteByte(']')
	return writeRawJSON(w, b.Bytes())
}

// writeJSONValue writes a plain Go value as indented JSON.
func writeJSONValue(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeRawJSON(w, b)
}

// say writes s wrapped at spaces to Width columns, continuation lines
// indented by indent spaces; runs of spaces inside a line are kept (they
// align labels). A word longer than a line stays whole.
func say(w io.Writer, indent int, s string) {
	body := strings.TrimLeft(s, " ")
	line := s[:len(s)-len(body)]
	start := true // line holds no word yet
	for _, word := range strings.Split(body, " ") {
		switch {
		case start:
			line += word
			start = word == ""
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > Width && word != "":
			fmt.Fprintln(w, strings.TrimRight(line, " "))
			line = strings.Repeat(" ", indent) + word
		default:
			line += " " + word
		}
	}
	fmt.Fprintln(w, strings.TrimRight(line, " "))
}

// dropEmpty removes the columns (after the first) that are empty in every
// row, with their headings, to leave the room to the others.
func (t *table) dropEmpty() {
	if t.header == nil || len(t.rows) == 0 {
		return
	}
	for c := len(t.header) - 1; c > 0; c-- {
		empty := true
		for _, r := range t.rows {
			if c < len(r) && r[c] != "" {
				empty = false
				break
			}
		}
		if !empty {
			continue
		}
		if t.sevCol > c {
			t.sevCol--
		}
		if t.flex > c {
			t.flex--
		} else if t.flex == c {
			t.flex = -1
		}
		t.header = append(t.header[:c:c], t.header[c+1:]...)
		for i, r := range t.rows {
			if c < len(r) {
				t.rows[i] = append(r[:c:c], r[c+1:]...)
			}
		}
	}
}
