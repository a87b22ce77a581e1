package engine

import (
	"context"
	"strings"
	"testing"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// TestDrainOverride: a drained destination stays in IPVS at weight 0 (its
// connections finish, new ones go elsewhere), a drained backend is drained
// everywhere, clearing it restores the weight, and a vserver cannot be
// drained.
func TestDrainOverride(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := gkeServing(t, cfg, cl)
	ctx := context.Background()
	set := func(req *enginepb.OverrideRequest) {
		t.Helper()
		if _, err := r.e.Override(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	drain, def := enginepb.OverrideState_OVERRIDE_DRAIN, enginepb.OverrideState_OVERRIDE_DEFAULT
	set(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Destination{Destination: "user-1-ingress-controller/100.115.222.167:80/TCP"}, State: drain})
	r.waitFor("the destination at weight 0", func() bool {
		s := r.k.ipvs.Save()
		return strings.Contains(s, "-r 100.115.222.167:80 -g -w 0") && strings.Contains(s, "-r 100.115.222.167:443 -g -w 1")
	})
	vs, err := r.e.Vservers(ctx, &enginepb.VserversRequest{Name: "user-1-ingress-controller"})
	must(t, err)
	found := false
	for _, s := range vs.Vservers[0].Services {
		for _, d := range s.Destinations {
			if d.Name == "user-1-ingress-controller/100.115.222.167:80/TCP" {
				found = true
				if d.Weight != 0 || !d.InIpvs || d.Active || !d.Enabled || d.Override != drain {
					t.Errorf("drained destination: %v", d)
				}
			}
		}
	}
	if !found {
		t.Fatal("the drained destination is not reported")
	}
	set(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Destination{Destination: "user-1-ingress-controller/100.115.222.167:80/TCP"}, State: def})
	r.waitFor("the weight back", func() bool { return strings.Contains(r.k.ipvs.Save(), "-r 100.115.222.167:80 -g -w 1") })

	set(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Backend{Backend: "admin-2"}, State: drain})
	r.waitFor("the backend at weight 0 everywhere", func() bool {
		s := r.k.ipvs.Save()
		return strings.Contains(s, "100.115.222.164") && !strings.Contains(s, "-r 100.115.222.164:6443 -g -w 1") &&
			!strings.Contains(s, "100.115.222.164:443 -g -w 1")
	})
	if _, err := r.e.Override(ctx, &enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Vserver{Vserver: "admin-control-plane"}, State: drain}); err == nil ||
		!strings.Contains(err.Error(), "drain is for backends and destinations") {
		t.Errorf("drain of a vserver: %v", err)
	}
}
