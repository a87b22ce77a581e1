package config

import (
	"fmt"
	"net/netip"
)

// CrossCheck checks seesaw.cfg against cluster.pb: this node and its peer
// must be nodes of the cluster (Seesaw v2 only found out at run time, its
// issue #36) and the cluster VIP must agree. Errors point at the seesaw.cfg
// line to fix.
func CrossCheck(e *Engine, c *Cluster) Errors {
	var errs Errors
	issue := func(key, msg string) {
		errs = append(errs, Issue{File: e.File, Line: e.KeyLine("cluster", key), Msg: fmt.Sprintf("[cluster] %s: %s", key, msg)})
	}
	var self *Node
	for _, k := range []struct {
		key  string
		addr netip.Addr
	}{{"node_ipv4", e.Node.IPv4}, {"node_ipv6", e.Node.IPv6}} {
		if !k.addr.IsValid() {
			continue
		}
		n := c.NodeByAddr(k.addr)
		switch {
		case n == nil:
			issue(k.key, fmt.Sprintf("%s is not the address of any node in %s", k.addr, c.File))
		case self != nil && n != self:
			issue(k.key, fmt.Sprintf("%s belongs to node %q but node_ipv4 to node %q", k.addr, n.FQDN, self.FQDN))
		default:
			self = n
		}
	}
	var peer *Node
	for _, k := range []struct {
		key  string
		addr netip.Addr
	}{{"peer_ipv4", e.Peer.IPv4}, {"peer_ipv6", e.Peer.IPv6}} {
		if !k.addr.IsValid() {
			continue
		}
		n := c.NodeByAddr(k.addr)
		switch {
		case n == nil:
			issue(k.key, fmt.Sprintf("%s is not the address of any node in %s", k.addr, c.File))
		case self != nil && n == self:
			issue(k.key, fmt.Sprintf("%s is this node's own address (node %q)", k.addr, n.FQDN))
		case peer != nil && n != peer:
			issue(k.key, fmt.Sprintf("%s belongs to node %q but peer_ipv4 to node %q", k.addr, n.FQDN, peer.FQDN))
		default:
			peer = n
		}
	}
	if v := e.ClusterVIP.IPv4; v.IsValid() && (!c.VIP.IPv4.IsValid() || c.VIP.IPv4.Addr() != v) {
		issue("vip_ipv4", fmt.Sprintf("%s differs from seesaw_vip ipv4 %s in %s", v, prefixAddr(c.VIP.IPv4), c.File))
	}
	if v := e.ClusterVIP.IPv6; v.IsValid() && (!c.VIP.IPv6.IsValid() || c.VIP.IPv6.Addr() != v) {
		issue("vip_ipv6", fmt.Sprintf("%s differs from seesaw_vip ipv6 %s in %s", v, prefixAddr(c.VIP.IPv6), c.File))
	}
	return errs
}

func prefixAddr(p netip.Prefix) string {
	if !p.IsValid() {
		return "(unset)"
	}
	return p.Addr().String()
}

// Result is everything Check found.
type Result struct {
	// Engine and Cluster are the loaded configs. Either may be nil when its
	// file could not be read or parsed, and neither is trustworthy unless
	// Err() is nil.
	Engine  *Engine
	Cluster *Cluster
	// ThisNode and Peer are the cluster nodes seesaw.cfg names, when found.
	ThisNode *Node
	Peer     *Node
	// Warnings from both files; they never fail the check.
	Warnings []Warning
	// Errors from both files and from CrossCheck.
	Errors Errors
}

// Err returns the errors found, or nil.
func (r *Result) Err() error { return r.Errors.Err() }

// Check loads seesaw.cfg and cluster.pb and checks them alone and against
// each other, collecting every error rather than stopping at the first. It
// is what "seesaw_cli config check" runs, and what the engine should run
// before applying a new config.
func Check(enginePath, clusterPath string) *Result {
	var ed, cd []byte
	var eerr, cerr error
	ed, eerr = readFile(enginePath)
	cd, cerr = readFile(clusterPath)
	return check(enginePath, ed, eerr, clusterPath, cd, cerr)
}

// CheckData is Check of contents already read (a candidate config that is
// not on disk); the names are used in messages.
func CheckData(engineName string, engineData []byte, clusterName string, clusterData []byte) *Result {
	return check(engineName, engineData, nil, clusterName, clusterData, nil)
}

func check(enginePath string, ed []byte, eerr error, clusterPath string, cd []byte, cerr error) *Result {
	r := &Result{}
	if eerr != nil {
		r.Errors = append(r.Errors, eerr)
	} else {
		e, warns, errs := parseEngine(enginePath, ed)
		r.Engine = e
		r.Warnings = append(r.Warnings, warns...)
		r.Errors = append(r.Errors, errs...)
	}
	if cerr != nil {
		r.Errors = append(r.Errors, cerr)
	} else {
		c, errs := parseCluster(clusterPath, cd)
		r.Cluster = c
		if c != nil {
			r.Warnings = append(r.Warnings, c.Warnings...)
		}
		r.Errors = append(r.Errors, errs...)
	}
	if r.Engine != nil && r.Cluster != nil {
		r.Errors = append(r.Errors, CrossCheck(r.Engine, r.Cluster)...)
		if a := r.Engine.Node.IPv4; a.IsValid() {
			r.ThisNode = r.Cluster.NodeByAddr(a)
		}
		if a := r.Engine.Peer.IPv4; a.IsValid() {
			r.Peer = r.Cluster.NodeByAddr(a)
		}
	}
	return r
}
