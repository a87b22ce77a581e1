package appliance

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hapb "github.com/seesawlb/seesaw/proto/ha"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// TestLabPairReloadKeepsMastership: a reload of the master of a pair
// (SIGHUP to its watchdog, as systemctl reload and a package upgrade send)
// restarts every daemon, HA and the engine included, and the node stays
// master throughout: the backup's HA makes no transition, and every
// established connection through the master still carries data after.
// Before, HA stepped down with priority 0 on its restart (and again when
// its engine restarted), and the backup took over.
func TestLabPairReloadKeepsMastership(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, LBNIC: "eth2"})
	lb1, lb2, client := topo.LBs[0], topo.LBs[1], topo.Client
	for _, b := range topo.Backends {
		if err := DSR(b, pairDSRVIP4, pairDSRVIP6, pairMHVIP4); err != nil {
			t.Fatal(err)
		}
		Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	cluster := pairClusterPB(topo.Backends)
	a1 := Start(t, lb1, Options{Bin: bin, SeesawCfg: pairSeesawCfg(1, 2), ClusterPB: cluster})
	a1.WaitRunning(t, 2*time.Minute)
	a1.WaitMaster(t, 2*time.Minute)
	a2 := Start(t, lb2, Options{Bin: bin, SeesawCfg: pairSeesawCfg(2, 1), ClusterPB: cluster})
	a2.WaitRunning(t, 2*time.Minute)
	a2.Wait(t, 2*time.Minute, "lb2 backup", func() error {
		ctx, cancel := rpcCtx()
		defer cancel()
		st, err := a2.HA.GetStatus(ctx, &hapb.GetStatusRequest{})
		if err != nil {
			return err
		}
		if st.State != seesawpb.HAState_HA_STATE_BACKUP {
			return fmt.Errorf("lb2's HA is %v", st.State)
		}
		return nil
	})
	Wait(t, 2*time.Minute, "lb1's IPVS holding every service with both backends", func() error {
		tab, err := IPVS(lb1)
		if err != nil {
			return err
		}
		for _, f := range pairFlows {
			if s := tab.Service(f.key()); s == nil || len(s.Dests) != len(topo.Backends) {
				return fmt.Errorf("lb1 lacks %s with %d backends:\n%s", f.key(), len(topo.Backends), tab.Text)
			}
		}
		return nil
	})

	var held []*Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, f := range pairFlows {
		for range 2 {
			c, err := Hold(client, f.dst(), 10*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			held = append(held, c)
		}
	}
	for _, c := range held {
		if err := c.Exchange(10 * time.Second); err != nil {
			t.Fatalf("%s before the reload: %v", c.Dst, err)
		}
	}

	backupTransitions, err := a2.HATransitions()
	if err != nil {
		t.Fatal(err)
	}
	before, err := a1.Services()
	if err != nil {
		t.Fatal(err)
	}
	reloadAt := time.Now()
	if err := a1.wd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a1.Wait(t, 3*time.Minute, "every daemon of lb1 restarted by the reload, lb2 never master", func() error {
		if n, err := a2.HATransitions(); err == nil && n != backupTransitions {
			return Permanent(fmt.Errorf("lb2's HA made %d transition(s) during lb1's reload", n-backupTransitions))
		}
		svcs, err := a1.running()
		if err != nil {
			return err
		}
		for _, name := range Daemons {
			if svcs[name].GetPid() == before[name].GetPid() {
				return fmt.Errorf("%s still runs as pid %d", name, before[name].GetPid())
			}
		}
		return nil
	})
	t.Logf("reload: every daemon of lb1 a new process %v after SIGHUP", time.Since(reloadAt).Round(time.Millisecond))
	took := a1.WaitMaster(t, time.Minute)
	t.Logf("lb1 master with its data plane applied %v after that", took.Round(time.Millisecond))
	if n, err := a2.HATransitions(); err != nil || n != backupTransitions {
		t.Errorf("lb2's HA transitions %d (%v), %d before lb1's reload: mastership moved", n, err, backupTransitions)
	}

	var lost []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Go(func() {
			if err := c.Exchange(90 * time.Second); err != nil {
				mu.Lock()
				defer mu.Unlock()
				lost = append(lost, fmt.Sprintf("%s -> %s (%s): %v", c.Src, c.Dst, c.Answer.Backend, err))
			}
		})
	}
	wg.Wait()
	t.Logf("established connections kept through the master's reload: %d of %d", len(held)-len(lost), len(held))
	if len(lost) > 0 {
		t.Errorf("lost:\n%s", strings.Join(lost, "\n"))
	}
}
