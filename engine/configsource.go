package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/engine/peer"
	"github.com/seesawlb/seesaw/engine/source"
	configpb "github.com/seesawlb/seesaw/proto/config"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The config sources (package source): disk, server, peer, none. seesaw.cfg
// always comes from disk (it is this node's); the source decides where the
// cluster config comes from. The choice is kept in the state file: unlike
// Seesaw, which reset it to "server" on every HA transition (its issues
// #100, #107), it holds until an operator changes it.

const sourcePeer = source.Peer

// sourceLocked is the config source. Hold e.mu.
func (e *Engine) sourceLocked() string {
	if e.source == "" {
		return source.Disk
	}
	return e.source
}

// kickSource asks the source poller to pull now.
func (e *Engine) kickSource() {
	select {
	case e.sourceKick <- struct{}{}:
	default:
	}
}

// reload pulls the config from the source. With no config loaded yet (at
// start), a source that fails falls back to disk, so that the node serves.
func (e *Engine) reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.mu.Lock()
	src, loaded := e.sourceLocked(), e.cur != nil
	e.mu.Unlock()
	var err error
	switch src {
	case source.None:
		if loaded {
			glog.Infof("engine: config source none: keeping the running config")
			return nil
		}
		glog.Infof("engine: config source none, but no config is loaded: reading it from disk once")
		return e.reloadDisk()
	case source.Server:
		err = e.reloadServer()
	case sourcePeer:
		err = e.reloadPeer()
	default:
		err = e.reloadDisk()
		if err == nil {
			e.setSourceDetail(fmt.Sprintf("disk: %s", e.cfg.ClusterConf))
		}
		return err
	}
	if err != nil && !loaded && e.bootstrap(src, err) {
		// Serving the archived or the disk's config; the source's error
		// is in the status.
		return nil
	}
	return err
}

// bootstrap loads a config when the source failed with none loaded (at
// start): the newest archived one, the last the source gave, else the
// disk's. It reports whether one loaded.
func (e *Engine) bootstrap(src string, err error) bool {
	files, _ := source.Archived(e.cfg.ConfigArchive)
	for i := len(files) - 1; i >= 0; i-- {
		ed, eerr := os.ReadFile(e.cfg.EngineConf)
		cd, cerr := os.ReadFile(files[i])
		if eerr != nil || cerr != nil {
			break
		}
		if e.accept(config.CheckData(e.cfg.EngineConf, ed, files[i], cd)) == nil {
			glog.Warningf("engine: %v; running the last config it gave (%s) until it answers", err, files[i])
			e.mu.Lock()
			e.sourceDetail = fmt.Sprintf("archive: %s (the %s source failed at start)", files[i], src)
			e.lastErr, e.lastErrTime = err.Error(), e.now()
			e.mu.Unlock()
			return true
		}
	}
	glog.Warningf("engine: %v; reading the config from disk until the %s source answers", err, src)
	if derr := e.reloadDisk(); derr != nil {
		return false
	}
	e.mu.Lock()
	e.sourceDetail = fmt.Sprintf("disk: %s (the %s source failed at start)", e.cfg.ClusterConf, src)
	e.lastErr, e.lastErrTime = err.Error(), e.now()
	e.mu.Unlock()
	return true
}

func (e *Engine) setSourceDetail(s string) {
	e.mu.Lock()
	e.sourceDetail = s
	e.mu.Unlock()
}

// sourceFailed records a failed pull as the last error.
func (e *Engine) sourceFailed(err error) error {
	e.mu.Lock()
	e.lastErr, e.lastErrTime = err.Error(), e.now()
	e.mu.Unlock()
	glog.Warningf("engine: %v", err)
	return err
}

// engineConf reads seesaw.cfg, which every source takes from disk.
func (e *Engine) engineConf() (*config.Engine, []byte, error) {
	b, err := os.ReadFile(e.cfg.EngineConf)
	if err != nil {
		return nil, nil, err
	}
	en, _, err := config.ParseEngine(e.cfg.EngineConf, b)
	if err != nil {
		return nil, nil, err
	}
	return en, b, nil
}

func (e *Engine) reloadServer() error {
	en, _, err := e.engineConf()
	if err != nil {
		return e.sourceFailed(fmt.Errorf("config source server: %w", err))
	}
	ca, err := peer.LoadCA(filepath.Join(e.cfg.SSLDir, peer.CAFile))
	if err != nil {
		return e.sourceFailed(fmt.Errorf("config source server: the cluster CA: %w", err))
	}
	f := &source.Fetcher{Servers: en.ConfigServers, Port: en.ConfigServerPort, Cluster: en.ClusterName, CA: ca, Timeout: en.ConfigServerTimeout}
	if e.cfg.ConfigServerPort != 0 {
		f.Port = e.cfg.ConfigServerPort
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(f.Servers)+1)*max(f.Timeout, time.Second))
	defer cancel()
	c, from, err := f.Fetch(ctx)
	if err != nil {
		return e.sourceFailed(fmt.Errorf("config source server: %w", err))
	}
	return e.acceptRemote(c, from)
}

func (e *Engine) reloadPeer() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := e.peer.Config(ctx)
	if err != nil {
		return e.sourceFailed(fmt.Errorf("config source peer: %s", status.Convert(err).Message()))
	}
	if resp.HaState != seesawpb.HAState_HA_STATE_LEADER {
		return e.sourceFailed(fmt.Errorf("config source peer: the peer is %v, not the master: its config is not taken", resp.HaState))
	}
	c := &configpb.Cluster{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(resp.Cluster, c); err != nil {
		return e.sourceFailed(fmt.Errorf("config source peer: the peer's config does not decode: %w", err))
	}
	return e.acceptRemote(c, "peer "+e.peer.Status().Address)
}

// acceptRemote applies a config from the server or the peer: one older
// than the running config (by metadata.last_updated) is ignored, the same
// one is no change; otherwise it is checked with seesaw.cfg like a disk
// config, and archived once accepted.
func (e *Engine) acceptRemote(c *configpb.Cluster, from string) error {
	e.mu.Lock()
	cur := e.cur
	e.mu.Unlock()
	if cur != nil && cur.res.Cluster.Proto != nil {
		old := cur.res.Cluster.Proto
		if c.GetMetadata().GetLastUpdated() < old.GetMetadata().GetLastUpdated() {
			msg := fmt.Sprintf("the config from %s (last_updated %s) is older than the running one (%s): ignored", from,
				unixUTC(c.GetMetadata().GetLastUpdated()), unixUTC(old.GetMetadata().GetLastUpdated()))
			return e.sourceFailed(fmt.Errorf("%s", msg))
		}
		if proto.Equal(c, old) {
			glog.V(1).Infof("engine: the config from %s is the running one", from)
			return nil
		}
	}
	_, ed, err := e.engineConf()
	if err != nil {
		return e.sourceFailed(fmt.Errorf("config from %s: %w", from, err))
	}
	text, err := source.Text(c)
	if err != nil {
		return e.sourceFailed(fmt.Errorf("config from %s: %w", from, err))
	}
	res := config.CheckData(e.cfg.EngineConf, ed, from, text)
	if err := e.accept(res); err != nil {
		return err
	}
	now := e.now()
	detail := fmt.Sprintf("%s at %s", from, now.UTC().Format(time.RFC3339))
	file, err := source.Archive(e.cfg.ConfigArchive, e.cfg.ArchiveKeep, c, from, now)
	if err != nil {
		glog.Errorf("engine: %v", err)
		detail += fmt.Sprintf(" (not archived: %v)", err)
	} else {
		detail += ", archived as " + file
	}
	e.setSourceDetail(detail)
	glog.Infof("engine: config from %s applied, archived as %s", from, file)
	return nil
}

func unixUTC(s int64) string { return time.Unix(s, 0).UTC().Format(time.RFC3339) }

// pollSource pulls from the server or peer source every config interval,
// and at once when kicked (the peer's config changed).
func (e *Engine) pollSource(ctx context.Context) {
	for {
		interval := e.cfg.SourceInterval
		if interval <= 0 {
			interval = time.Minute
			if cur, _ := e.current(); cur != nil && cur.res.Engine.ConfigInterval > 0 {
				interval = cur.res.Engine.ConfigInterval
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-e.sourceKick:
		case <-time.After(interval):
		}
		e.mu.Lock()
		src := e.sourceLocked()
		e.mu.Unlock()
		if src == source.Server || src == sourcePeer {
			e.Reload()
		}
	}
}
