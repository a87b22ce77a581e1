package main

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestHelpDocumentsTheLayout(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"--help"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"DIR/<cluster>.pb", "DIR/<cluster>/cluster.pb", "/config/<cluster>", "-listen", "last_updated"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not say %q:\n%s", want, out.String())
		}
	}
}

func TestRequiredFlags(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"--dir", t.TempDir()}, &out); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("without --cert: %v", err)
	}
	if err := run(context.Background(), []string{"--dir", "/nonexistent", "--cert", "c", "--key", "k"}, &out); err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("a missing --dir: %v", err)
	}
}
