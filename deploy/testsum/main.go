// Command testsum reads `go test -json` output, prints a short report per
// package with the full output of every failing test, and counts tests per
// layer (unit, namespace, lab; see deploy/testenv).
//
//	go test -json ./... | testsum -layer unit -record .cache/tests.jsonl
//	testsum -summary .cache/tests.jsonl
//
// With CI set, a skipped test is a failure: in CI every layer must run.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type key struct{ pkg, test string }

type result struct {
	Layer   string `json:"layer"`
	Package string `json:"package"`
	Test    string `json:"test"`
	Outcome string `json:"outcome"` // pass, fail, skip
	Reason  string `json:"reason,omitempty"`
}

func main() {
	layer := flag.String("layer", "unit", "layer of tests that log no layer marker")
	record := flag.String("record", "", "append per-test results to this file (JSON lines)")
	summary := flag.String("summary", "", "print the per-layer summary of a record file and exit")
	flag.Parse()
	var err error
	if *summary != "" {
		err = summarize(os.Stdout, *summary, os.Getenv("CI") != "")
	} else {
		err = consume(os.Stdin, os.Stdout, *layer, *record)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(1)
	}
}

func consume(in io.Reader, out io.Writer, defLayer, record string) error {
	output := map[key]*strings.Builder{}
	layers := map[key]string{}
	var results []result
	var pkgFailed []string
	pkgTests := map[string]int{}
	testFailed := map[string]bool{} // a package with a failed test of its own
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not test2json (a build error printed by go itself): pass it on.
			fmt.Fprintln(out, string(line))
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output", "build-output":
			b := output[k]
			if b == nil {
				b = &strings.Builder{}
				output[k] = b
			}
			b.WriteString(e.Output)
			if i := strings.Index(e.Output, testenv.Marker); i >= 0 && e.Test != "" {
				l := strings.TrimSpace(e.Output[i+len(testenv.Marker):])
				layers[topLevel(k)] = l
				layers[k] = l
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				status := "ok  "
				if e.Action == "fail" {
					status = "FAIL"
					switch {
					case pkgTests[e.Package] == 0 || hasBuildFailure(output[k]):
						pkgFailed = append(pkgFailed, e.Package)
						fmt.Fprint(out, indent(output[k].String()))
					case !testFailed[e.Package]:
						// Every finished test passed, yet the package
						// failed: the binary died under a test still
						// running (go test's -timeout, a crash, a
						// guest gone). What it printed says which.
						pkgFailed = append(pkgFailed, e.Package)
						fmt.Fprintf(out, "--- FAIL: %s: the package failed after %d passing tests (a timeout or a crash); its last output:\n%s",
							e.Package, pkgTests[e.Package], indent(lastLines(output, e.Package, 60)))
					}
				}
				if e.Action == "skip" {
					continue // no test files
				}
				fmt.Fprintf(out, "%s %s (%.1fs, %d tests)\n", status, e.Package, e.Elapsed, pkgTests[e.Package])
				continue
			}
			if strings.Contains(e.Test, "/") {
				continue // subtests count with their parent
			}
			pkgTests[e.Package]++
			l := layers[k]
			if l == "" {
				l = defLayer
			}
			r := result{Layer: l, Package: e.Package, Test: e.Test, Outcome: e.Action}
			if e.Action == "skip" {
				r.Reason = skipReason(output[k])
			}
			if e.Action == "fail" {
				testFailed[e.Package] = true
				fmt.Fprintf(out, "--- FAIL: %s %s\n%s", e.Package, e.Test, indent(collect(output, e.Package, e.Test)))
			}
			results = append(results, r)
		case "build-fail":
			pkgFailed = append(pkgFailed, e.Package)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, p := range pkgFailed {
		results = append(results, result{Layer: defLayer, Package: p, Test: "(the package did not build, run or finish)", Outcome: "fail"})
	}
	if record != "" {
		f, err := os.OpenFile(record, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(f)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.Outcome == "fail" {
			return errors.New("some tests failed")
		}
	}
	return nil
}

// lastLines is the last n lines that pkg printed, its tests' and its own,
// in the order they came (a test still running when the binary died has
// no end event: its output is only here).
func lastLines(output map[key]*strings.Builder, pkg string, n int) string {
	var all []string
	for k, b := range output {
		if k.pkg == pkg && k.test == "" {
			all = append(all, strings.Split(strings.TrimRight(b.String(), "\n"), "\n")...)
		}
	}
	for k, b := range output {
		if k.pkg == pkg && k.test != "" && !strings.Contains(k.test, "/") && !strings.Contains(b.String(), "--- PASS") {
			all = append(all, strings.Split(strings.TrimRight(b.String(), "\n"), "\n")...)
		}
	}
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n") + "\n"
}

func topLevel(k key) key {
	if i := strings.Index(k.test, "/"); i >= 0 {
		return key{k.pkg, k.test[:i]}
	}
	return k
}

func hasBuildFailure(b *strings.Builder) bool {
	return b != nil && (strings.Contains(b.String(), "[build failed]") || strings.Contains(b.String(), "[setup failed]"))
}

// collect gathers the output of a test and its subtests.
func collect(output map[key]*strings.Builder, pkg, test string) string {
	var ks []key
	for k := range output {
		if k.pkg == pkg && (k.test == test || strings.HasPrefix(k.test, test+"/")) {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].test < ks[j].test })
	var b strings.Builder
	for _, k := range ks {
		b.WriteString(output[k].String())
	}
	return b.String()
}

func skipReason(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	var last string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- SKIP") && !strings.Contains(l, testenv.Marker) {
			last = l
		}
	}
	return last
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func summarize(out io.Writer, path string, ci bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type counts struct{ pass, fail, skip int }
	byLayer := map[string]*counts{}
	var skipped, failed []result
	dec := json.NewDecoder(f)
	for {
		var r result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		c := byLayer[r.Layer]
		if c == nil {
			c = &counts{}
			byLayer[r.Layer] = c
		}
		switch r.Outcome {
		case "pass":
			c.pass++
		case "fail":
			c.fail++
			failed = append(failed, r)
		case "skip":
			c.skip++
			skipped = append(skipped, r)
		}
	}
	var total counts
	fmt.Fprintf(out, "\ntests by layer (%s):\n", time.Now().UTC().Format(time.RFC3339))
	for _, l := range []string{"unit", "namespace", "lab"} {
		c := byLayer[l]
		if c == nil {
			c = &counts{}
		}
		fmt.Fprintf(out, "  %-9s %4d passed, %d failed, %d skipped\n", l, c.pass, c.fail, c.skip)
		total.pass, total.fail, total.skip = total.pass+c.pass, total.fail+c.fail, total.skip+c.skip
		delete(byLayer, l)
	}
	for l, c := range byLayer {
		fmt.Fprintf(out, "  %-9s %4d passed, %d failed, %d skipped\n", l, c.pass, c.fail, c.skip)
		total.pass, total.fail, total.skip = total.pass+c.pass, total.fail+c.fail, total.skip+c.skip
	}
	for _, r := range skipped {
		fmt.Fprintf(out, "  skipped: %s %s: %s\n", r.Package, r.Test, r.Reason)
	}
	for _, r := range failed {
		fmt.Fprintf(out, "  failed:  %s %s\n", r.Package, r.Test)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", total.pass, total.fail, total.skip)
	switch {
	case total.fail > 0:
		return fmt.Errorf("%d tests failed", total.fail)
	case total.pass == 0:
		return errors.New("no test ran")
	case ci && total.skip > 0:
		return fmt.Errorf("%d tests skipped; in CI every layer must run", total.skip)
	}
	return nil
}
