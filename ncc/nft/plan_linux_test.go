package nft

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// These tests plan against kernel states written by hand: no kernel.

// holding is the kernel state that a run applying st leaves, with rules
// numbered from handle 100.
func holding(st State) kernelState {
	have := kernelState{table: table()}
	h := uint64(100)
	want := wantRules(st)
	for _, s := range chainSpecs() {
		ws := want[s.name]
		if len(ws) == 0 {
			continue
		}
		kc := &kernelChain{chain: s.chain()}
		for _, w := range ws {
			kc.rules = append(kc.rules, kernelRule{handle: h, comment: w.key, digest: digest(w.exprs)})
			h++
		}
		have.chains = append(have.chains, kc)
	}
	return have
}

func (k kernelState) chain(name string) *kernelChain {
	for _, c := range k.chains {
		if c.chain.Name == name {
			return c
		}
	}
	return nil
}

func changes(ops []op) string {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.change.String() + "\n")
	}
	return b.String()
}

func sample() State {
	return State{
		Fwmarks: []Fwmark{{Addr: v4, Proto: TCP, Port: 80, Mark: 7}, {Addr: v6, Proto: UDP, Mark: 8}},
		SNAT:    []SNAT{{VIP: v4, Proto: TCP, Port: 8080, ToSource: src}},
	}
}

func TestPlanFromNothing(t *testing.T) {
	if ops := plan(State{}, kernelState{}); len(ops) != 0 {
		t.Errorf("nothing wanted, nothing there: %s", changes(ops))
	}
	got := changes(plan(sample(), kernelState{}))
	want := `add nft-table inet seesaw
add nft-chain fwmark: type filter hook prerouting priority -150
add nft-chain vip_snat: type nat hook postrouting priority 100
add nft-fwmark TCP 192.0.2.10:80 mark 7
add nft-fwmark UDP [2001:db8::10]:* mark 8
add nft-snat TCP 192.0.2.10:8080 to 198.51.100.2
`
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	// A chain only for rules: fwmarks alone make no nat chain (which
	// would turn connection tracking on).
	got = changes(plan(State{Fwmarks: sample().Fwmarks[:1]}, kernelState{}))
	if strings.Contains(got, "nat") {
		t.Errorf("fwmarks alone:\n%s", got)
	}
}

func TestPlanAdoptsWhatIsHeld(t *testing.T) {
	st := sample()
	if ops := plan(st, holding(st)); len(ops) != 0 {
		t.Errorf("the kernel holds the state: %s", changes(ops))
	}
	// In any order, and in any order of the request.
	have := holding(st)
	for _, kc := range have.chains {
		rand.Shuffle(len(kc.rules), func(i, j int) { kc.rules[i], kc.rules[j] = kc.rules[j], kc.rules[i] })
	}
	rand.Shuffle(len(st.Fwmarks), func(i, j int) { st.Fwmarks[i], st.Fwmarks[j] = st.Fwmarks[j], st.Fwmarks[i] })
	if ops := plan(st, have); len(ops) != 0 {
		t.Errorf("the kernel holds the state in another order: %s", changes(ops))
	}
	if k := known(holding(sample())); !reflect.DeepEqual(k, sample()) {
		t.Errorf("known: %+v, want %+v", k, sample())
	}
}

func TestPlanChangesOnlyWhatDiffers(t *testing.T) {
	have := holding(sample())
	st := sample()
	st.Fwmarks[0].Mark = 9                                                  // replaced: another key
	st.Fwmarks = append(st.Fwmarks, Fwmark{Addr: v4, Proto: SCTP, Mark: 3}) // new
	st.SNAT = nil                                                           // the nat chain goes
	got := changes(plan(st, have))
	want := `delete nft-fwmark TCP 192.0.2.10:80 mark 7
delete nft-snat TCP 192.0.2.10:8080 to 198.51.100.2
delete nft-chain vip_snat
add nft-fwmark TCP 192.0.2.10:80 mark 9
add nft-fwmark SCTP 192.0.2.10:* mark 3
`
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	// Nothing wanted: everything goes, the table last.
	got = changes(plan(State{}, have))
	want = `delete nft-fwmark TCP 192.0.2.10:80 mark 7
delete nft-fwmark UDP [2001:db8::10]:* mark 8
delete nft-chain fwmark
delete nft-snat TCP 192.0.2.10:8080 to 198.51.100.2
delete nft-chain vip_snat
delete nft-table inet seesaw
`
	if got != want {
		t.Errorf("plan for nothing:\n%s\nwant:\n%s", got, want)
	}
}

// TestPlanRepairs: what someone else did to the NCC's table is undone,
// and nothing else is touched.
func TestPlanRepairs(t *testing.T) {
	st := sample()
	fw := wantRules(st)[ChainFwmark]
	for _, c := range []struct {
		name   string
		change func(*kernelState)
		want   string
	}{
		{"dormant table", func(k *kernelState) { k.table.Flags = tableDormant },
			"update nft-table inet seesaw: dormant -> active\n"},
		{"a rule of someone else's", func(k *kernelState) {
			c := k.chain(ChainFwmark)
			c.rules = append(c.rules, kernelRule{handle: 7, comment: "mine"}, kernelRule{handle: 8})
		}, "delete nft-rule fwmark handle 7: not the NCC's (comment \"mine\")\ndelete nft-rule fwmark handle 8: not the NCC's\n"},
		{"a duplicate", func(k *kernelState) {
			c := k.chain(ChainFwmark)
			c.rules = append(c.rules, kernelRule{handle: 9, comment: fw[0].key, digest: digest(fw[0].exprs)})
		}, "delete nft-fwmark TCP 192.0.2.10:80 mark 7: a duplicate\n"},
		{"our comment on another rule", func(k *kernelState) {
			c := k.chain(ChainFwmark)
			c.rules[0].digest = digest([]expr.Any{&expr.Counter{}})
		}, "delete nft-fwmark TCP 192.0.2.10:80 mark 7: replaced: not made as its comment says\nadd nft-fwmark TCP 192.0.2.10:80 mark 7\n"},
		{"our comment without a digest (nft -f of a listing)", func(k *kernelState) {
			k.chain(ChainFwmark).rules[1].digest = nil
		}, "delete nft-fwmark UDP [2001:db8::10]:* mark 8: replaced: not made as its comment says\nadd nft-fwmark UDP [2001:db8::10]:* mark 8\n"},
		{"a rule in the wrong chain", func(k *kernelState) {
			c := k.chain(ChainSNAT)
			c.rules = append(c.rules, kernelRule{handle: 9, comment: fw[0].key, digest: digest(fw[0].exprs)})
		}, "delete nft-rule vip_snat handle 9: not the NCC's (comment \"fwmark TCP 192.0.2.10:80 mark 7\")\n"},
		{"a chain of someone else's", func(k *kernelState) {
			k.chains = append(k.chains, &kernelChain{chain: &nftables.Chain{Name: "extra", Table: table()}, rules: []kernelRule{{handle: 3}}})
		}, "delete nft-rule extra handle 3\ndelete nft-chain extra: not the NCC's\n"},
		{"our chain at another priority", func(k *kernelState) {
			p := nftables.ChainPriority(0)
			k.chain(ChainSNAT).chain.Priority = &p
		}, `delete nft-snat TCP 192.0.2.10:8080 to 198.51.100.2
delete nft-chain vip_snat: replaced: not type nat hook postrouting priority 100
add nft-chain vip_snat: type nat hook postrouting priority 100
add nft-snat TCP 192.0.2.10:8080 to 198.51.100.2
`},
		{"our chain dropping", func(k *kernelState) {
			d := nftables.ChainPolicyDrop
			k.chain(ChainFwmark).chain.Policy = &d
		}, "delete nft-chain fwmark: replaced"},
		{"a flushed table", func(k *kernelState) {
			for _, c := range k.chains {
				c.rules = nil
			}
		}, "add nft-fwmark TCP 192.0.2.10:80 mark 7\nadd nft-fwmark UDP [2001:db8::10]:* mark 8\nadd nft-snat TCP 192.0.2.10:8080 to 198.51.100.2\n"},
		{"a deleted chain", func(k *kernelState) { k.chains = k.chains[:1] },
			"add nft-chain vip_snat: type nat hook postrouting priority 100\nadd nft-snat TCP 192.0.2.10:8080 to 198.51.100.2\n"},
	} {
		have := holding(st)
		c.change(&have)
		if got := changes(plan(st, have)); !strings.Contains(got, c.want) || c.want[len(c.want)-1] == '\n' && got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, got, c.want)
		}
		// What the kernel holds that is the NCC's as it should be.
		k := known(have)
		switch c.name {
		case "our comment on another rule":
			if len(k.Fwmarks) != 1 || len(k.SNAT) != 1 {
				t.Errorf("%s: known %+v", c.name, k)
			}
		case "a rule in the wrong chain", "a duplicate", "a rule of someone else's":
			if !reflect.DeepEqual(k, st) {
				t.Errorf("%s: known %+v", c.name, k)
			}
		}
	}
}

func TestUserdata(t *testing.T) {
	ud := encodeUserdata("fwmark TCP 192.0.2.10:80 mark 7", []byte("0123456789abcdef"))
	if c, d := decodeUserdata(ud); c != "fwmark TCP 192.0.2.10:80 mark 7" || string(d) != "0123456789abcdef" {
		t.Errorf("decode: %q %q", c, d)
	}
	// Whatever else is there is read with care.
	for _, ud := range [][]byte{nil, {0}, {0, 200, 'x'}, {5, 1}, {0, 0}} {
		decodeUserdata(ud)
	}
	if c, _ := decodeUserdata([]byte{1, 1, 0, 0, 3, 'a', 'b', 0}); c != "ab" {
		t.Errorf("comment after another TLV: %q", c)
	}
	// Marks, ports and addresses are in the expressions: rules that
	// differ in any of them differ in digest.
	seen := map[string]string{}
	for _, f := range []Fwmark{{Addr: v4, Proto: TCP, Port: 80, Mark: 7}, {Addr: v4, Proto: TCP, Port: 80, Mark: 8},
		{Addr: v4, Proto: TCP, Port: 81, Mark: 7}, {Addr: v4, Proto: UDP, Port: 80, Mark: 7}, {Addr: v4, Mark: 7},
		{Addr: a("192.0.2.11"), Proto: TCP, Port: 80, Mark: 7}} {
		d := string(digest(f.exprs()))
		if o, ok := seen[d]; ok {
			t.Errorf("%s and %s have one digest", f, o)
		}
		seen[d] = f.String()
	}
}
