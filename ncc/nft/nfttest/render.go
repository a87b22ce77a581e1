package nfttest

import (
	"fmt"
	"strconv"
	"strings"
)

// String renders the ruleset as `nft list ruleset` does; see List.
func (k *Kernel) String() string { return k.List(false) }

// List renders the ruleset in the form of `nft list ruleset` (with
// handles, of `nft -a list ruleset`): tables in the order they were made,
// chains with their type, hook, priority and policy, one line per rule. A
// rule is shown by its comment (`comment "fwmark TCP 192.0.2.10:80 mark
// 7"`), which names the NCC's rules; one without a comment by the names of
// its expressions (`[payload cmp counter]`), which the fake does not read
// further.
func (k *Kernel) List(handles bool) string {
	return Render(k.Tables(), handles)
}

// Render renders tables as List does. Tests render what a real kernel
// holds with it too.
func Render(tables []Table, handles bool) string {
	var b strings.Builder
	handle := func(h uint64) string {
		if !handles {
			return ""
		}
		return " # handle " + strconv.FormatUint(h, 10)
	}
	for _, t := range tables {
		fmt.Fprintf(&b, "table %s %s {%s\n", t.Family, t.Name, handle(t.Handle))
		if t.Dormant {
			b.WriteString("\tflags dormant\n")
			if len(t.Chains) > 0 {
				b.WriteString("\n")
			}
		}
		for i, c := range t.Chains {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "\tchain %s {%s\n", c.Name, handle(c.Handle))
			if c.Base != nil {
				fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy %s;\n", c.Base.Type, c.Base.Hook,
					priority(c.Base.Hook, c.Base.Priority), c.Base.Policy)
			}
			for _, r := range c.Rules {
				what := "[" + strings.Join(r.ExprNames(), " ") + "]"
				if cm := r.Comment(); cm != "" {
					what = "comment " + strconv.Quote(cm)
				}
				fmt.Fprintf(&b, "\t\t%s%s\n", what, handle(r.Handle))
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// priority names a priority as nft(8) does for the ip, ip6 and inet
// families, where it has a name.
func priority(hook string, p int32) string {
	switch {
	case p == -300:
		return "raw"
	case p == -150:
		return "mangle"
	case p == -100 && (hook == "prerouting" || hook == "output"):
		return "dstnat"
	case p == 0:
		return "filter"
	case p == 50:
		return "security"
	case p == 100 && (hook == "postrouting" || hook == "input"):
		return "srcnat"
	}
	return strconv.Itoa(int(p))
}
