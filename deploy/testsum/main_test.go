package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const stream = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0}
{"Action":"run","Package":"p","Test":"TestRoot"}
{"Action":"output","Package":"p","Test":"TestRoot","Output":"    x_test.go:9: seesaw-test-layer: namespace\n"}
{"Action":"run","Package":"p","Test":"TestRoot/sub"}
{"Action":"pass","Package":"p","Test":"TestRoot/sub","Elapsed":0}
{"Action":"pass","Package":"p","Test":"TestRoot","Elapsed":0}
{"Action":"run","Package":"p","Test":"TestSkip"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"    x_test.go:12: needs a thing\n"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestSkip","Elapsed":0}
{"Action":"pass","Package":"p","Elapsed":0.1}
`

func TestCountsPerLayer(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "r.jsonl")
	var out strings.Builder
	if err := consume(strings.NewReader(stream), &out, "unit", rec); err != nil {
		t.Fatalf("consume: %v", err)
	}
	out.Reset()
	if err := summarize(&out, rec, false); err != nil {
		t.Fatalf("summarize: %v", err)
	}
	for _, want := range []string{
		"unit         1 passed, 0 failed, 1 skipped",
		"namespace    1 passed, 0 failed, 0 skipped",
		"skipped: p TestSkip: x_test.go:12: needs a thing",
		"\n2 passed, 0 failed, 1 skipped\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	// In CI a skip fails the run.
	if err := summarize(&out, rec, true); err == nil {
		t.Error("CI summary with a skipped test did not fail")
	}
}

func TestFailuresAndBuildErrors(t *testing.T) {
	in := `{"Action":"run","Package":"p","Test":"TestBad"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"    bad_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestBad","Elapsed":0}
{"Action":"fail","Package":"p","Elapsed":0}
{"Action":"output","Package":"q","Output":"q.go:1: syntax error\n"}
{"Action":"output","Package":"q","Output":"FAIL\tq [build failed]\n"}
{"Action":"fail","Package":"q","Elapsed":0}
`
	rec := filepath.Join(t.TempDir(), "r.jsonl")
	var out strings.Builder
	if err := consume(strings.NewReader(in), &out, "unit", rec); err == nil {
		t.Fatal("consume of failing tests returned nil")
	}
	for _, want := range []string{"--- FAIL: p TestBad", "boom", "q.go:1: syntax error"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	b, _ := os.ReadFile(rec)
	if !strings.Contains(string(b), `"package":"q"`) {
		t.Errorf("build failure of q not recorded: %s", b)
	}
	out.Reset()
	if err := summarize(&out, rec, false); err == nil || !strings.Contains(out.String(), "0 passed, 2 failed") {
		t.Errorf("summary: %v\n%s", err, out.String())
	}
}

func TestNoTestIsAFailure(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "r.jsonl")
	os.WriteFile(rec, nil, 0o644)
	var out strings.Builder
	if err := summarize(&out, rec, false); err == nil {
		t.Error("an empty run passed")
	}
}

// A package whose binary dies under a running test (go test's timeout)
// has only passed tests: it is a failure all the same, and its output
// says why.
func TestPackageDiedAfterPasses(t *testing.T) {
	in := `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (1.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":1}
{"Action":"run","Package":"p","Test":"TestSlow"}
{"Action":"output","Package":"p","Test":"TestSlow","Output":"    slow_test.go:7: still waiting\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 10m0s\n"}
{"Action":"output","Package":"p","Output":"\trunning tests:\n\t\tTestSlow (9m59s)\n"}
{"Action":"fail","Package":"p","Elapsed":600}
`
	rec := filepath.Join(t.TempDir(), "r.jsonl")
	var out strings.Builder
	if err := consume(strings.NewReader(in), &out, "lab", rec); err == nil {
		t.Fatal("a package that timed out was not a failure")
	}
	for _, want := range []string{"the package failed after 1 passing tests", "panic: test timed out", "TestSlow (9m59s)", "still waiting"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "--- PASS: TestA") {
		t.Errorf("the passing test's output is shown:\n%s", out.String())
	}
}
