package nfttest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// These tests run the fake and the host's kernel side by side, the kernel
// in a network namespace of its own: where they part, the fake is wrong.

// kernelNode gives a test a fresh namespace and a descriptor of it.
func kernelNode(t *testing.T) (*labtest.Node, int) {
	t.Helper()
	testenv.RequireRoot(t)
	n := labtest.NewTestNode(t, "nft")
	f, err := os.Open(filepath.Join("/run/netns", n.NS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return n, int(f.Fd())
}

// bigBuffers lets a socket take a large batch's answers, as the
// reconciler's do.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	})
}

func kernelSide(t *testing.T, ns int) *side {
	lib, err := nftables.New(nftables.WithNetNSFd(ns), nftables.WithSockOptions(bigBuffers))
	if err != nil {
		t.Fatal(err)
	}
	dial := func() (*netlink.Conn, error) {
		return netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: ns})
	}
	return &side{
		name: "kernel",
		dial: dial,
		lib:  lib,
		exchange: func(msgs []netlink.Message) ([][]netlink.Message, error) {
			conn, err := dial()
			if err != nil {
				return nil, err
			}
			defer conn.Close()
			if _, err := conn.SendMessages(msgs); err != nil {
				return nil, err
			}
			raw, err := conn.SyscallConn()
			if err != nil {
				return nil, err
			}
			// The kernel answers within sendmsg (a dump's next part
			// within the recvmsg that drains the last): what is not
			// there now never comes.
			var out [][]netlink.Message
			buf := make([]byte, 1<<20)
			for {
				var n int
				var rerr error
				if err := raw.Read(func(fd uintptr) bool {
					n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
					return true
				}); err != nil {
					return nil, err
				}
				if errors.Is(rerr, unix.EAGAIN) {
					return out, nil
				}
				if rerr != nil {
					return nil, rerr
				}
				// The messages are kept: not in buf, which the next
				// read overwrites.
				ms, err := syscall.ParseNetlinkMessage(bytes.Clone(buf[:n]))
				if err != nil {
					return nil, err
				}
				var d []netlink.Message
				for _, m := range ms {
					d = append(d, netlink.Message{Header: netlink.Header{Length: m.Header.Len, Type: netlink.HeaderType(m.Header.Type),
						Flags: netlink.HeaderFlags(m.Header.Flags), Sequence: m.Header.Seq, PID: m.Header.Pid}, Data: m.Data})
				}
				out = append(out, d)
			}
		},
	}
}

// TestFakeAgreesWithKernelOnTheWire takes the fake and the kernel through
// the same steps: each must have the same outcome on both (the same
// datagrams, the same errors from google/nftables) and leave the same
// ruleset, handles included.
func TestFakeAgreesWithKernelOnTheWire(t *testing.T) {
	_, ns := kernelNode(t)
	real := kernelSide(t, ns)
	k := New()
	fake := fakeSide(t, k)
	for _, st := range steps() {
		kgot, kdetail, err := real.do(st)
		if err != nil {
			t.Fatalf("%s: kernel: %v", st.name, err)
		}
		fgot, fdetail, err := fake.do(st)
		if err != nil {
			t.Fatalf("%s: fake: %v", st.name, err)
		}
		if kgot != fgot || kdetail != fdetail {
			t.Errorf("%s: the kernel says %q (%s), the fake %q (%s)", st.name, kgot, kdetail, fgot, fdetail)
		} else if kgot != st.want {
			t.Errorf("%s: both say %q, the test %q", st.name, kgot, st.want)
		}
		kt, err := readRuleset(real.dial)
		if err != nil {
			t.Fatalf("%s: kernel: read: %v", st.name, err)
		}
		ft, err := readRuleset(fake.dial)
		if err != nil {
			t.Fatalf("%s: fake: read: %v", st.name, err)
		}
		if kr, fr := Render(kt, true), Render(ft, true); kr != fr {
			t.Errorf("%s: the kernel holds\n%s\nthe fake\n%s", st.name, kr, fr)
			// Carry on from the kernel's state, to find every difference
			// in one run.
			if err := k.Edit(func([]Table) []Table { return kt }); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFakeAgreesWithKernelUnderTheReconciler drives the NCC's reconciler
// over the kernel and over the fake through the sequences of ncc/nft's
// namespace tests (states in turn, a restart, random states) and through
// someone else's changes and the audits that repair them. After each step
// both must have made the same changes, with the same outcome, and hold
// the same rules, by key and handle.
func TestFakeAgreesWithKernelUnderTheReconciler(t *testing.T) {
	_, ns := kernelNode(t)
	realSide := kernelSide(t, ns)
	k := New()
	fakeSide := fakeSide(t, k)
	openReal := func() *nft.Reconciler {
		r, err := nft.Open(ns, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	kr, fr := openReal(), open(t, k)
	step := func(what string, do func(r *nft.Reconciler) ([]reconcile.Change, error)) {
		t.Helper()
		kw, fw := kr.Writes(), fr.Writes()
		kcs, kerr := do(kr)
		fcs, ferr := do(fr)
		if fmt.Sprint(kerr) != fmt.Sprint(ferr) || strs(kcs) != strs(fcs) {
			t.Errorf("%s: the kernel's reconciler did\n%s(%v)\nthe fake's\n%s(%v)", what, strs(kcs), kerr, strs(fcs), ferr)
		}
		if kr.Writes()-kw != fr.Writes()-fw {
			t.Errorf("%s: %d writes to the kernel, %d to the fake", what, kr.Writes()-kw, fr.Writes()-fw)
		}
		kt, err := readRuleset(realSide.dial)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got, want := k.List(true), Render(kt, true); got != want {
			t.Fatalf("%s: the kernel holds\n%s\nthe fake\n%s", what, want, got)
		}
	}
	applying := func(st nft.State) func(r *nft.Reconciler) ([]reconcile.Change, error) {
		return func(r *nft.Reconciler) ([]reconcile.Change, error) { return r.Apply(st, false) }
	}
	audit := func(r *nft.Reconciler) ([]reconcile.Change, error) { return r.Audit() }

	// ncc/nft's TestRulesLandAndApplyingAgainWritesNothing.
	step("dry run", func(r *nft.Reconciler) ([]reconcile.Change, error) { return r.Apply(full(), true) })
	step("full", applying(full()))
	step("full again", applying(full()))
	kr, fr = openReal(), open(t, k)
	step("a new reconciler", applying(full()))
	st := full()
	slices.Reverse(st.Fwmarks)
	slices.Reverse(st.SNAT)
	step("another order", applying(st))
	step("changed", applying(changed()))
	step("no fwmarks", applying(nft.State{SNAT: changed().SNAT}))
	step("nothing", applying(nft.State{}))
	step("nothing again", applying(nft.State{}))

	// ncc/nft's TestRandomStatesConverge.
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for i, st := range randomStates(rand.New(rand.NewPCG(seed, 0)), 25) {
		step(fmt.Sprintf("random state %d", i), applying(st))
	}

	// Someone else's changes, made on both, and the audits.
	step("full before the edits", applying(full()))
	both := func(what string, do func(s *side) error) {
		t.Helper()
		for _, s := range []*side{realSide, fakeSide} {
			if err := do(s); err != nil {
				t.Fatalf("%s: %s: %v", what, s.name, err)
			}
		}
		step("audit after "+what, audit)
		step("a second audit after "+what, audit)
	}
	seesaw := &nftables.Table{Name: nft.Table, Family: nftables.TableFamilyINet}
	fwmark := &nftables.Chain{Name: nft.ChainFwmark, Table: seesaw}
	handleOf := func(comment string) uint64 {
		for _, tb := range k.Tables() {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					if r.Comment() == comment {
						return r.Handle
					}
				}
			}
		}
		t.Fatalf("no rule %q", comment)
		return 0
	}
	both("a rule deleted", func(s *side) error {
		if err := s.lib.DelRule(&nftables.Rule{Table: seesaw, Chain: &nftables.Chain{Name: nft.ChainSNAT, Table: seesaw},
			Handle: handleOf("snat UDP [2001:db8::10]:53 to 2001:db8:2::2")}); err != nil {
			return err
		}
		return s.lib.Flush()
	})
	both("a rule by hand with our comment", func(s *side) error {
		s.lib.AddRule(&nftables.Rule{Table: seesaw, Chain: fwmark, Exprs: []expr.Any{&expr.Counter{}},
			UserData: CommentUserdata("fwmark TCP 192.0.2.10:80 mark 7")})
		return s.lib.Flush()
	})
	both("a chain's rules flushed", func(s *side) error {
		s.lib.FlushChain(fwmark)
		return s.lib.Flush()
	})
	both("dormant", func(s *side) error {
		_, err := s.exchange(batchOf(msg(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, inet, name(unix.NFTA_TABLE_NAME, nft.Table),
			be32(unix.NFTA_TABLE_FLAGS, unix.NFT_TABLE_F_DORMANT))))
		return err
	})
	both("the table deleted", func(s *side) error {
		s.lib.DelTable(seesaw)
		return s.lib.Flush()
	})
	both("the ruleset flushed", func(s *side) error {
		s.lib.FlushRuleset()
		return s.lib.Flush()
	})
	step("cleanup", func(r *nft.Reconciler) ([]reconcile.Change, error) { return r.Cleanup() })
	t.Logf("in step with the kernel to the end; the fake's last list:\n%s", k.List(true))
}
