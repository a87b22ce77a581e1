// Package config loads and validates a Seesaw node's configuration: the
// engine settings in seesaw.cfg (INI) and the cluster description in
// cluster.pb (protobuf text, the Seesaw v2 schema in proto/config).
//
// Loading is strict where Seesaw v2 was lax: every problem found is reported
// at once, each naming the file and either its line (and column) or the path
// of the offending object, so that an operator can fix a config in one pass
// before a daemon ever sees it. Problems that Seesaw tolerated and that do not
// change what gets served are warnings; they never fail a load.
//
// The API:
//
//	LoadEngine(path) / ParseEngine(name, data)   seesaw.cfg  -> *Engine, []Warning, error
//	LoadCluster(path) / ParseCluster(name, data) cluster.pb  -> *Cluster, error
//	FromProto(name, pb)                          a decoded (e.g. binary) cluster -> *Cluster, error
//	CrossCheck(e, c)                             seesaw.cfg against cluster.pb
//	Check(enginePath, clusterPath)               all of the above -> *Result
//
// seesaw.cfg keeps Seesaw v2's sections, keys and defaults (DefaultEngine)
// and adds one key, "[cluster] anycast_ranges" (CIDRs, comma-separated), which
// replaces the anycast ranges Seesaw v2 hard-coded.
//
// Errors are returned as an Errors value (one Issue per problem); Warnings are
// Issues too. A Cluster keeps the raw *configpb.Cluster next to typed views
// (nodes with VRRP priorities, vservers, entries, backends, checks) that use
// net/netip types.
package config
