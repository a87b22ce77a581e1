package nfttest

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/seesawlb/seesaw/ncc/nft"
)

// These tests run the NCC's real reconciler over the fake: states in,
// kernel text out, without privileges.

func TestApplyWritesTheStateAndNothingTwice(t *testing.T) {
	k := New()
	r := open(t, k)

	// A dry run reads and writes nothing.
	cs, err := r.Apply(full(), true)
	if err != nil || len(cs) != 1+2+8 || k.Writes() != 0 || k.String() != "" {
		t.Fatalf("dry run: %v %v, %d writes\n%s", cs, err, k.Writes(), k)
	}
	cs = apply(t, r, full())
	if len(cs) != 11 || k.Writes() != 11 || r.Writes() != 11 {
		t.Errorf("first apply: %d writes by the kernel, %d by the reconciler\n%s", k.Writes(), r.Writes(), strs(cs))
	}
	if got := k.String(); got != fullText {
		t.Errorf("the kernel holds\n%s\nwant\n%s", got, fullText)
	}
	// The kernel gave the handles: the table's one counter for its
	// chains and rules.
	if l := k.List(true); !strings.Contains(l, "table inet seesaw { # handle 1\n\tchain fwmark { # handle 1\n") ||
		!strings.Contains(l, `comment "fwmark TCP 192.0.2.10:80 mark 7" # handle 3`) ||
		!strings.Contains(l, `comment "snat any 192.0.2.20 to 198.51.100.2" # handle 10`) {
		t.Errorf("handles:\n%s", l)
	}

	// Again: the reconciler trusts its record and neither reads nor
	// writes.
	reqs := k.Requests()
	if cs := apply(t, r, full()); len(cs) != 0 || k.Writes() != 11 || k.Requests() != reqs {
		t.Errorf("the same state again: %d writes, %d requests\n%s", k.Writes()-11, k.Requests()-reqs, strs(cs))
	}
	// An audit reads, and finds nothing to do.
	if cs, err := r.Audit(); len(cs) != 0 || err != nil || k.Writes() != 11 || k.Requests() == reqs {
		t.Errorf("audit: %v %v, %d writes, %d requests", cs, err, k.Writes()-11, k.Requests()-reqs)
	}

	// A change writes what changed, and nothing else; the new rules
	// get new handles.
	cs = apply(t, r, changed())
	want := `delete nft-fwmark UDP 192.0.2.10:53 mark 9
delete nft-fwmark any 192.0.2.20 mark 11
add nft-fwmark UDP 192.0.2.10:53 mark 10
add nft-snat SCTP 192.0.2.10:9 to 198.51.100.2
`
	if strs(cs) != want || k.Writes() != 15 {
		t.Errorf("a changed state: %d writes\n%s\nwant\n%s", k.Writes()-11, strs(cs), want)
	}
	if l := k.List(true); !strings.Contains(l, `comment "fwmark UDP 192.0.2.10:53 mark 10" # handle 11`) ||
		!strings.Contains(l, `comment "snat SCTP 192.0.2.10:9 to 198.51.100.2" # handle 12`) {
		t.Errorf("new handles:\n%s", l)
	}
}

// TestChainsAndTheTableGoWithTheirLastRule: a chain exists only while it
// has rules, the table only while a chain does.
func TestChainsAndTheTableGoWithTheirLastRule(t *testing.T) {
	k := New()
	r := open(t, k)
	apply(t, r, full())

	st := nft.State{SNAT: full().SNAT}
	cs := apply(t, r, st)
	if got := strs(cs); strings.Count(got, "delete nft-fwmark") != 5 || !strings.HasSuffix(got, "delete nft-chain fwmark\n") {
		t.Errorf("no fwmarks:\n%s", got)
	}
	if got := k.String(); strings.Contains(got, "chain fwmark") || !strings.Contains(got, "chain vip_snat") || strings.Count(got, "comment") != 3 {
		t.Errorf("no fwmarks: the kernel holds\n%s", got)
	}

	st.SNAT = st.SNAT[1:]
	if cs := apply(t, r, st); strs(cs) != "delete nft-snat TCP 192.0.2.10:443 to 198.51.100.2\n" {
		t.Errorf("one rule fewer:\n%s", strs(cs))
	}

	cs = apply(t, r, nft.State{})
	want := `delete nft-snat UDP [2001:db8::10]:53 to 2001:db8:2::2
delete nft-snat any 192.0.2.20 to 198.51.100.2
delete nft-chain vip_snat
delete nft-table inet seesaw
`
	if strs(cs) != want {
		t.Errorf("no rules:\n%s\nwant\n%s", strs(cs), want)
	}
	if k.String() != "" || len(k.Tables()) != 0 {
		t.Errorf("the table is left with no rules:\n%s", k)
	}
	w := k.Writes()
	if cs := apply(t, r, nft.State{}); len(cs) != 0 || k.Writes() != w {
		t.Errorf("nothing, again:\n%s", strs(cs))
	}
}

// TestANewReconcilerAdoptsTheRules: a reconciler opened on a kernel that
// holds its rules (an NCC restarted) knows them and writes nothing.
func TestANewReconcilerAdoptsTheRules(t *testing.T) {
	k := New()
	apply(t, open(t, k), full())
	w := k.Writes()

	r := open(t, k)
	known, err := r.Known()
	if err != nil || !slices.Equal(keys(known), keys(full())) {
		t.Errorf("a new reconciler knows %v, %v; want %v", keys(known), err, keys(full()))
	}
	if cs := apply(t, r, full()); len(cs) != 0 || k.Writes() != w || r.Writes() != 0 {
		t.Errorf("a new reconciler, the same state: %d writes\n%s", k.Writes()-w, strs(cs))
	}
	// In another order too.
	st := full()
	slices.Reverse(st.Fwmarks)
	slices.Reverse(st.SNAT)
	if cs := apply(t, open(t, k), st); len(cs) != 0 || k.Writes() != w {
		t.Errorf("the same rules in another order:\n%s", strs(cs))
	}
}

// TestAuditRepairsEdits: what someone else does to the table is undone
// by the next audit, which says what it repaired, and only by it.
func TestAuditRepairsEdits(t *testing.T) {
	k := New()
	r := open(t, k)
	if cs, err := r.Audit(); cs != nil || err != nil {
		t.Errorf("audit before any apply: %v %v", cs, err)
	}
	apply(t, r, full())
	ours := func(ts []Table) *Table {
		for i := range ts {
			if ts[i].Family == "inet" && ts[i].Name == nft.Table {
				return &ts[i]
			}
		}
		t.Fatalf("no table inet %s", nft.Table)
		return nil
	}
	chain := func(tb *Table, name string) *Chain {
		for i := range tb.Chains {
			if tb.Chains[i].Name == name {
				return &tb.Chains[i]
			}
		}
		t.Fatalf("no chain %s", name)
		return nil
	}
	for _, c := range []struct {
		what string
		edit func([]Table) []Table
		want string
	}{
		{"nothing", func(ts []Table) []Table { return ts }, ""},
		{"a rule deleted", func(ts []Table) []Table {
			c := chain(ours(ts), nft.ChainSNAT)
			c.Rules = slices.DeleteFunc(c.Rules, func(r Rule) bool { return r.Comment() == "snat UDP [2001:db8::10]:53 to 2001:db8:2::2" })
			return ts
		}, "add nft-snat UDP [2001:db8::10]:53 to 2001:db8:2::2\n"},
		{"a rule by hand", func(ts []Table) []Table {
			c := chain(ours(ts), nft.ChainFwmark)
			c.Rules = append(c.Rules, Rule{Exprs: c.Rules[0].Exprs})
			return ts
		}, "delete nft-rule fwmark handle 12: not the NCC's\n"},
		{"our comment on a rule by hand", func(ts []Table) []Table {
			c := chain(ours(ts), nft.ChainFwmark)
			c.Rules = append(c.Rules, Rule{Exprs: c.Rules[0].Exprs, UserData: CommentUserdata("fwmark TCP 192.0.2.10:80 mark 7")})
			return ts
		}, "delete nft-fwmark TCP 192.0.2.10:80 mark 7: not made as its comment says\n"},
		{"a chain by hand", func(ts []Table) []Table {
			tb := ours(ts)
			tb.Chains = append(tb.Chains, Chain{Name: "extra"})
			return ts
		}, "delete nft-chain extra: not the NCC's\n"},
		{"a chain's rules flushed", func(ts []Table) []Table {
			chain(ours(ts), nft.ChainFwmark).Rules = nil
			return ts
		}, "add nft-fwmark TCP 192.0.2.10:80 mark 7\n"},
		{"another priority", func(ts []Table) []Table {
			chain(ours(ts), nft.ChainSNAT).Base.Priority = 50
			return ts
		}, "delete nft-chain vip_snat: replaced: not type nat hook postrouting priority 100\n"},
		{"dormant", func(ts []Table) []Table {
			ours(ts).Dormant = true
			return ts
		}, "update nft-table inet seesaw: dormant -> active\n"},
		{"the table deleted", func(ts []Table) []Table {
			return slices.DeleteFunc(ts, func(tb Table) bool { return tb.Name == nft.Table })
		}, "add nft-table inet seesaw\n"},
	} {
		if err := k.Edit(c.edit); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		w := k.Writes()
		cs, err := r.Audit()
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		for _, ch := range cs {
			if ch.Err != nil {
				t.Errorf("%s: %s", c.what, ch)
			}
		}
		if got := strs(cs); !strings.Contains(got, c.want) || c.want == "" && got != "" {
			t.Errorf("%s: the audit did\n%s\nwant it to do\n%s", c.what, got, c.want)
		}
		if k.Writes()-w != len(cs) {
			t.Errorf("%s: %d changes, %d writes", c.what, len(cs), k.Writes()-w)
		}
		if got := k.String(); sortedLines(got) != sortedLines(fullText) {
			t.Errorf("%s: after the audit the kernel holds\n%s\nwant\n%s", c.what, got, fullText)
		}
		if cs, _ := r.Audit(); len(cs) != 0 {
			t.Errorf("%s: a second audit:\n%s", c.what, strs(cs))
		}
	}

	k.Flush()
	if cs, err := r.Audit(); err != nil || len(cs) != 11 || sortedLines(k.String()) != sortedLines(fullText) {
		t.Errorf("after a flushed ruleset the audit did %v, %v:\n%s", cs, err, k)
	}
}

// TestAFailedBatchWritesNothing: the kernel applies a batch whole or not
// at all; every change of a failed one carries the error, and the next
// run writes it all again.
func TestAFailedBatchWritesNothing(t *testing.T) {
	k := New()
	r := open(t, k)
	apply(t, r, nft.State{Fwmarks: full().Fwmarks[:1]})
	before := k.List(true)

	for _, errno := range []syscall.Errno{syscall.ENOMEM, syscall.EPERM} {
		k.FailNext(errno)
		cs, err := r.Apply(full(), false)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 8 {
			t.Errorf("%v: %d changes\n%s", errno, len(cs), strs(cs))
		}
		for _, c := range cs {
			if !errors.Is(c.Err, errno) {
				t.Errorf("%v: %s", errno, c)
			}
		}
		if got := k.List(true); got != before {
			t.Errorf("%v: a failed batch changed the kernel:\n%s\nwas\n%s", errno, got, before)
		}
	}
	w := k.Writes()
	if cs := apply(t, r, full()); len(cs) != 8 || k.Writes()-w != 8 || k.String() != fullText {
		t.Errorf("after the failures: %d writes\n%s\nthe kernel holds\n%s", k.Writes()-w, strs(cs), k)
	}
	// A failed batch takes handles, as the kernel's does: the first's
	// fwmark rules got 3-6 (its chain was refused, and with it the
	// SNAT rules; the second batch was refused whole), so the chain
	// made now is 7 and the rules start at 8.
	if l := k.List(true); !strings.Contains(l, "chain vip_snat { # handle 7") ||
		!strings.Contains(l, `comment "fwmark UDP 192.0.2.10:53 mark 9" # handle 8`) {
		t.Errorf("handles after a failed batch:\n%s", l)
	}
}

// TestRandomStatesConverge applies random states in turn, each from a
// fresh reconciler now and then: each leaves the kernel holding exactly
// it, and a second apply writes nothing.
func TestRandomStatesConverge(t *testing.T) {
	k := New()
	r := open(t, k)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	for i, st := range randomStates(rand.New(rand.NewPCG(seed, 0)), 40) {
		if i%5 == 4 {
			r = open(t, k)
		}
		w := k.Writes()
		cs := apply(t, r, st)
		if k.Writes()-w != len(cs) {
			t.Fatalf("state %d: %d changes, %d writes", i, len(cs), k.Writes()-w)
		}
		var held []string
		for _, tb := range k.Tables() {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					held = append(held, r.Comment())
				}
			}
		}
		slices.Sort(held)
		if !slices.Equal(held, keys(st)) {
			t.Fatalf("state %d: the kernel holds\n%v\nwant\n%v", i, held, keys(st))
		}
		if st.Empty() != (len(k.Tables()) == 0) {
			t.Fatalf("state %d: %d tables for %d rules", i, len(k.Tables()), len(keys(st)))
		}
		if cs := apply(t, r, st); len(cs) != 0 {
			t.Fatalf("state %d again:\n%s", i, strs(cs))
		}
	}
}

func TestEditRefusesWhatTheKernelCannotHold(t *testing.T) {
	k := New()
	apply(t, open(t, k), full())
	before := k.List(true)
	for _, c := range []struct {
		what string
		edit func([]Table) []Table
		want string
	}{
		{"family", func(ts []Table) []Table { return append(ts, Table{Family: "ipx", Name: "x"}) }, `nfttest: edit: table ipx x: no family "ipx"`},
		{"hook", func(ts []Table) []Table {
			ts[0].Chains[0].Base.Hook = "sideways"
			return ts
		}, `nfttest: edit: chain fwmark: no hook "sideways"`},
		{"twice", func(ts []Table) []Table { return append(ts, ts[0]) }, "nfttest: edit: table inet seesaw twice"},
	} {
		if err := k.Edit(c.edit); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %s", c.what, err, c.want)
		}
		if k.List(true) != before {
			t.Errorf("%s: a refused edit changed the kernel", c.what)
		}
	}
}

// TestAClientReadsWhatItIsNotSent: a receive with nothing sent fails
// rather than hanging as a socket would.
func TestAClientReadsWhatItIsNotSent(t *testing.T) {
	if _, err := New().Func()(nil); !errors.Is(err, syscall.EAGAIN) || !strings.HasPrefix(err.Error(), "nfttest: receive: ") {
		t.Errorf("a receive with nothing sent: %v", err)
	}
}
