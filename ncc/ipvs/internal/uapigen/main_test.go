package main

import (
	"bytes"
	"os"
	"testing"
)

func TestParseSubset(t *testing.T) {
	src := []byte(`
/* a comment with enum { X } ; inside */
#ifndef _GUARD_H
#define _GUARD_H
#define A	0x0001		/* one */
#define B	(A << 4)
#define C	(B|A)
#define NAME	"IPVS"
#define F(x)	((x) + 1)
#define D	(0x10+2)
enum {
	E0 = 0,
	E1,
	E2, /* trailing */
	__E_MAX,
};
#define E_MAX (__E_MAX - 1)
enum { G = 5, H };
#endif
`)
	got, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"A": 1, "B": 16, "C": 17, "D": 18, "E0": 0, "E1": 1, "E2": 2, "E_MAX": 2, "G": 5, "H": 6}
	seen := map[string]bool{}
	for _, c := range got {
		seen[c.Name] = true
		if c.Name == "NAME" {
			if !c.IsStr || c.Str != "IPVS" {
				t.Errorf("NAME = %+v", c)
			}
			continue
		}
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected constant %+v", c)
			continue
		}
		if c.Int != w {
			t.Errorf("%s = %d, want %d", c.Name, c.Int, w)
		}
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("%s missing", n)
		}
	}
	if seen["F"] || seen["__E_MAX"] || seen["_GUARD_H"] {
		t.Errorf("emitted a macro, sentinel or guard: %v", seen)
	}
}

func TestParseRejectsUnknownName(t *testing.T) {
	if _, err := Parse([]byte("#define A (B + 1)\n")); err == nil {
		t.Fatal("no error for an expression over an unknown name")
	}
}

// TestGeneratedMatchesHeader keeps the committed constants equal to what
// the installed kernel header says.
func TestGeneratedMatchesHeader(t *testing.T) {
	const header = "/usr/include/linux/ip_vs.h"
	src, err := os.ReadFile(header)
	if os.IsNotExist(err) {
		t.Skipf("%s not installed (apt-get install linux-libc-dev)", header)
	}
	if err != nil {
		t.Fatal(err)
	}
	want, err := Generate(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../uapi/zz_ip_vs.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ncc/ipvs/internal/uapi/zz_ip_vs.go is stale; run: go generate ./ncc/ipvs/internal/uapi")
	}
}
