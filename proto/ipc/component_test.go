package ipc

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func TestComponentHealthFollowsFacilities(t *testing.T) {
	before := time.Now()
	c := NewComponent("ncc")
	st := c.Snapshot()
	if st.Component != "ncc" || st.Pid != int32(os.Getpid()) || st.Version != Version {
		t.Errorf("identity = %q pid %d version %q", st.Component, st.Pid, st.Version)
	}
	if st.Started.AsTime().Before(before.Add(-time.Second)) {
		t.Errorf("started %v, before the component was made (%v)", st.Started.AsTime(), before)
	}
	if !st.Healthy || st.State != "serving" {
		t.Errorf("no facilities: healthy=%v state=%q, want true/serving", st.Healthy, st.State)
	}

	if !c.SetFacility("ipvs", false, "IPVS generic netlink family not found") {
		t.Error("new facility not reported as a change")
	}
	c.SetFacility("engine", true, "connected")
	st = c.Snapshot()
	if st.Healthy {
		t.Error("healthy with an unavailable facility")
	}
	if st.State != "degraded: ipvs unavailable" {
		t.Errorf("state %q", st.State)
	}
	if len(st.Facilities) != 2 || st.Facilities[0].Name != "ipvs" || st.Facilities[0].Detail == "" {
		t.Errorf("facilities %v", st.Facilities)
	}
	if c.SetFacility("ipvs", false, "still missing") {
		t.Error("same availability reported as a change")
	}
	if !c.SetFacility("ipvs", true, "family id 30") {
		t.Error("availability change not reported")
	}
	if st := c.Snapshot(); !st.Healthy || st.State != "serving" || len(st.Facilities) != 2 {
		t.Errorf("after recovery: %v", st)
	}

	// A snapshot is a copy: changing the component later does not change it.
	c.SetDetail("checks", "3")
	c.SetWarnings("w1")
	snap := c.Snapshot()
	c.SetDetail("checks", "4")
	c.SetWarnings()
	c.SetFacility("ipvs", false, "gone")
	if snap.Details["checks"] != "3" || len(snap.Warnings) != 1 || !snap.Facilities[0].Available {
		t.Errorf("snapshot changed under us: %v", snap)
	}
	c.SetDetail("checks", "")
	if _, ok := c.Snapshot().Details["checks"]; ok {
		t.Error("empty detail not removed")
	}

	c.SetState("starting")
	c.SetHook(func(st *seesawpb.ComponentStatus) { st.Details["now"] = "computed" })
	st, err := c.Status(context.Background(), &seesawpb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "starting" || st.Details["now"] != "computed" {
		t.Errorf("state %q details %v", st.State, st.Details)
	}
}

func TestComponentOverSocket(t *testing.T) {
	testenv.RequireRoot(t) // the RootOnly policy refuses a non-root test process
	c := NewComponent("ha")
	c.SetFacility("vrrp", false, "VRRP speaker not in this build")
	sock := filepath.Join(t.TempDir(), "ha.sock")
	cc := serveComponent(t, sock, RootOnly, c)
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	st, err := seesawpb.NewComponentClient(cc).Status(cctx, &seesawpb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Component != "ha" || st.Healthy || st.Facilities[0].Detail != "VRRP speaker not in this build" {
		t.Errorf("status over the socket: %v", st)
	}
}

func TestLookup(t *testing.T) {
	uid, gid, err := LookupUser("root")
	if err != nil || uid != 0 || gid != 0 {
		t.Errorf("LookupUser(root) = %d, %d, %v", uid, gid, err)
	}
	if uid, _, err := LookupUser("0"); err != nil || uid != 0 {
		t.Errorf("LookupUser(0) = %d, %v", uid, err)
	}
	g, err := LookupGroup("root")
	if err != nil || g != 0 {
		t.Errorf("LookupGroup(root) = %d, %v", g, err)
	}
	if g, err := LookupGroup("4242"); err != nil || g != 4242 {
		t.Errorf("LookupGroup(4242) = %d, %v", g, err)
	}
	const missing = "seesaw-no-such-name-x"
	if _, _, err := LookupUser(missing); !errors.Is(err, ErrUnknownName) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LookupUser(missing) = %v, want ErrUnknownName naming it", err)
	}
	if _, err := LookupGroup(missing); !errors.Is(err, ErrUnknownName) {
		t.Errorf("LookupGroup(missing) = %v, want ErrUnknownName", err)
	}
	if _, _, err := LookupUser(""); err == nil {
		t.Error("LookupUser(\"\") succeeded")
	}

	ids, err := LookupUsers(" root, 1234 ,")
	if err != nil || len(ids) != 2 || ids[0] != 0 || ids[1] != 1234 {
		t.Errorf("LookupUsers = %v, %v", ids, err)
	}
	if ids, err := LookupUsers(""); err != nil || ids != nil {
		t.Errorf("LookupUsers(\"\") = %v, %v", ids, err)
	}
	if _, err := LookupGroups("root," + missing); !errors.Is(err, ErrUnknownName) {
		t.Errorf("LookupGroups with a missing name = %v", err)
	}
	// A name that exists on this host, other than root, resolves to its own id.
	if u, err := user.Lookup("nobody"); err == nil {
		uid, _, err := LookupUser("nobody")
		if err != nil || u.Uid != strconv.FormatUint(uint64(uid), 10) {
			t.Errorf("LookupUser(nobody) = %d, %v; /etc/passwd says %s", uid, err, u.Uid)
		}
	}
}
