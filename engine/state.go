package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/golang/glog"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/dataplane"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// The state file keeps what the engine decided that no config says: the
// operators' overrides (Seesaw lost them on every restart) and the
// firewall marks in use (so that a restarted engine rewrites no fwmark
// service or rule). It is written whole, through a temporary file and a
// rename, so a crash leaves the old or the new one.

// overrideKey is the key of an override's target: "vserver NAME",
// "backend FQDN", "destination NAME".
func overrideKey(r *enginepb.OverrideRecord) string {
	switch t := r.Target.(type) {
	case *enginepb.OverrideRecord_Vserver:
		return "vserver " + t.Vserver
	case *enginepb.OverrideRecord_Backend:
		return "backend " + t.Backend
	case *enginepb.OverrideRecord_Destination:
		return "destination " + t.Destination
	}
	return ""
}

// loadState reads the state file, if there is one. A file that does not
// parse is set aside (renamed .bad) and reported, not fatal.
func (e *Engine) loadState() {
	if e.cfg.StateFile == "" {
		return
	}
	b, err := os.ReadFile(e.cfg.StateFile)
	if os.IsNotExist(err) {
		return
	}
	st := &enginepb.EngineState{}
	if err == nil {
		err = proto.Unmarshal(b, st)
		if err != nil {
			bad := e.cfg.StateFile + ".bad"
			os.Rename(e.cfg.StateFile, bad)
			err = fmt.Errorf("%w (kept as %s)", err, bad)
		}
	}
	if err != nil {
		e.stateErr = fmt.Sprintf("state file %s could not be read: %v; starting without its overrides", e.cfg.StateFile, err)
		glog.Errorf("engine: %s", e.stateErr)
		return
	}
	for _, r := range st.Overrides {
		if k := overrideKey(r); k != "" {
			e.overrides[k] = r
		}
	}
	for _, r := range st.ClearedOverrides {
		if k := overrideKey(r); k != "" && e.overrides[k] == nil {
			e.cleared[k] = r
		}
	}
	e.marks = st.Marks
	if st.ConfigSource != "" {
		e.source = st.ConfigSource
		glog.Infof("engine: config source %s (from %s)", st.ConfigSource, e.cfg.StateFile)
	}
	if len(st.Overrides) > 0 {
		glog.Infof("engine: %d overrides from %s", len(st.Overrides), e.cfg.StateFile)
	}
}

// saveStateLocked writes the state file. Hold e.mu.
func (e *Engine) saveStateLocked() {
	if e.cfg.StateFile == "" {
		return
	}
	st := &enginepb.EngineState{Marks: e.marks, ConfigSource: e.source}
	st.Overrides = sortedRecords(e.overrides)
	st.ClearedOverrides = sortedRecords(e.cleared)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(st)
	if err == nil {
		err = writeFileAtomic(e.cfg.StateFile, b)
	}
	if err != nil {
		e.stateErr = fmt.Sprintf("state file %s could not be written: %v; overrides hold until the engine restarts", e.cfg.StateFile, err)
		glog.Errorf("engine: %s", e.stateErr)
		return
	}
	e.stateErr = ""
}

// sortedRecords are the records of m in the order of their keys.
func sortedRecords(m map[string]*enginepb.OverrideRecord) []*enginepb.OverrideRecord {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*enginepb.OverrideRecord, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// overridesInput is the overrides as the data plane takes them. Hold e.mu.
func (e *Engine) overridesInput() dataplane.Overrides {
	ov := dataplane.Overrides{Vservers: map[string]enginepb.OverrideState{}, Backends: map[string]enginepb.OverrideState{},
		Destinations: map[string]enginepb.OverrideState{}}
	for _, r := range e.overrides {
		st := r.GetInfo().GetState()
		switch t := r.Target.(type) {
		case *enginepb.OverrideRecord_Vserver:
			ov.Vservers[t.Vserver] = st
		case *enginepb.OverrideRecord_Backend:
			ov.Backends[t.Backend] = st
		case *enginepb.OverrideRecord_Destination:
			ov.Destinations[t.Destination] = st
		}
	}
	return ov
}
