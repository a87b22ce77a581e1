package keepalived

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	configpb "github.com/seesawlb/seesaw/proto/config"
)

// ClusterText renders cluster.pb: protobuf text in the schema's field order,
// two-space indents, each vserver preceded by the keepalived lines it came
// from, and the unmapped list at the end as comments. (prototext's own
// output is deliberately unstable, so golden files cannot use it.)
func (r *Result) ClusterText(source string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# cluster.pb imported from keepalived (%s) by \"seesaw config import keepalived\".\n", source)
	b.WriteString("# Both nodes carry this same file. Check it with: seesaw config check\n")
	c := r.Cluster.ProtoReflect()
	fields := c.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !c.Has(fd) {
			continue
		}
		if fd.Name() == "vserver" {
			list := c.Get(fd).List()
			for j := 0; j < list.Len(); j++ {
				vs := list.Get(j).Message().Interface().(*configpb.Vserver)
				b.WriteString("\n")
				for _, p := range r.Sources[vs.GetName()] {
					fmt.Fprintf(&b, "# from virtual_server at %s\n", p)
				}
				writeField(&b, 0, fd, list.Get(j))
			}
			continue
		}
		switch fd.Name() {
		case "seesaw_vip":
			b.WriteString("\n# The cluster VIP: held by the master, the gateway of NAT backends.\n")
		case "node":
			if c.Get(fd).List().Len() > 0 {
				b.WriteString("\n# The pair. Seesaw gives VRRP priority 255 to the lower IPv4 address.\n")
			}
		}
		writeValue(&b, 0, fd, c.Get(fd))
	}
	if len(r.Unmapped) > 0 {
		b.WriteString("\n# Not imported (see \"seesaw config import keepalived\" output):\n")
		for _, u := range r.Unmapped {
			fmt.Fprintf(&b, "#   %s\n", oneLine(u.String()))
		}
	}
	return []byte(b.String())
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func writeValue(b *strings.Builder, depth int, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	if fd.IsList() {
		list := v.List()
		for j := 0; j < list.Len(); j++ {
			writeField(b, depth, fd, list.Get(j))
		}
		return
	}
	writeField(b, depth, fd, v)
}

func writeField(b *strings.Builder, depth int, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	ind := strings.Repeat("  ", depth)
	if fd.Message() != nil {
		fmt.Fprintf(b, "%s%s {\n", ind, fd.Name())
		m := v.Message()
		fields := m.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			sub := fields.Get(i)
			if m.Has(sub) {
				writeValue(b, depth+1, sub, m.Get(sub))
			}
		}
		fmt.Fprintf(b, "%s}\n", ind)
		return
	}
	fmt.Fprintf(b, "%s%s: %s\n", ind, fd.Name(), scalar(fd, v))
}

func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return strconv.Quote(v.String())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return v.String()
}

// Text renders the node's seesaw.cfg.
func (e *Engine) Text(source string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# seesaw.cfg of %s, imported from keepalived (%s).\n", e.Label, source)
	b.WriteString("# Install as /etc/seesaw/seesaw.cfg on that node. Check it with: seesaw config check\n")
	for _, g := range e.Guessed {
		fmt.Fprintf(&b, "# Assumed: %s.\n", g)
	}
	b.WriteString("\n[cluster]\n")
	fmt.Fprintf(&b, "name = %s\n", e.Name)
	b.WriteString("# keepalived has no anycast: every VIP is a unicast VIP that moves with VRRP.\n")
	b.WriteString("anycast_enabled = false\nanycast_ranges =\n")
	kv := func(k string, a interface {
		IsValid() bool
		String() string
	}) {
		if a.IsValid() {
			fmt.Fprintf(&b, "%s = %s\n", k, a)
		}
	}
	kv("node_ipv4", e.Node.IPv4)
	kv("node_ipv6", e.Node.IPv6)
	kv("peer_ipv4", e.Peer.IPv4)
	kv("peer_ipv6", e.Peer.IPv6)
	kv("vip_ipv4", e.VIP.IPv4)
	kv("vip_ipv6", e.VIP.IPv6)
	b.WriteString("# virtual_router_id; use_vmac as keepalived's use_vmac.\n")
	fmt.Fprintf(&b, "vrid = %d\n", e.VRID)
	if e.AdvertMillis != 0 {
		b.WriteString("# advert_int, in milliseconds.\n")
		fmt.Fprintf(&b, "advert_interval = %d\n", e.AdvertMillis)
	}
	fmt.Fprintf(&b, "use_vmac = %t\n", e.UseVMAC)
	b.WriteString("\n[interface]\n")
	b.WriteString("# node: the vrrp_instance's interface (adverts); lb: where its VIPs live.\n")
	fmt.Fprintf(&b, "node = %s\n", e.NodeInterface)
	fmt.Fprintf(&b, "lb = %s\n", e.LBInterface)
	if e.NATGateway.IPv4.IsValid() || e.NATGateway.IPv6.IsValid() {
		b.WriteString("\n[nat_gateway]\n")
		b.WriteString("# The virtual_ipaddress on the backends' link that NAT backends route\n")
		b.WriteString("# their replies through: the master holds it, as keepalived's did.\n")
		kv("ipv4", e.NATGateway.IPv4)
		kv("ipv6", e.NATGateway.IPv6)
		fmt.Fprintf(&b, "interface = %s\n", e.GatewayInterface)
	}
	return []byte(b.String())
}

// Files are the files an import writes, by path relative to the output
// directory: cluster.pb, this node's seesaw.cfg, and the peer's as
// peer/seesaw.cfg when the peer is known.
func (r *Result) Files(source string) map[string][]byte {
	out := map[string][]byte{"cluster.pb": r.ClusterText(source)}
	for i, e := range r.Engines {
		name := "seesaw.cfg"
		if i == 1 {
			name = "peer/seesaw.cfg"
		}
		out[name] = e.Text(source)
	}
	return out
}

// UnmappedText lists the unmapped statements, one per line.
func (r *Result) UnmappedText() []byte {
	var b strings.Builder
	for _, u := range r.Unmapped {
		b.WriteString(oneLine(u.String()))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
