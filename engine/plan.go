package engine

import (
	"context"
	"fmt"
	"maps"
	"os"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/engine/dataplane"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Plan answers what a candidate config would change in the kernel, before
// it is applied: the desired state it gives with the running HA state,
// check results and overrides, and the NCC's dry run of it. Nothing
// changes. A candidate with errors is refused with them (file:line:col),
// as a reload would refuse it.
func (e *Engine) Plan(ctx context.Context, req *enginepb.PlanRequest) (*enginepb.PlanResponse, error) {
	engName, clName := e.cfg.EngineConf, e.cfg.ClusterConf
	engData, clData := req.SeesawCfg, req.ClusterPb
	var err error
	if engData == nil {
		if engData, err = os.ReadFile(engName); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "engine: plan: %v", err)
		}
	} else {
		engName = "seesaw.cfg (candidate)"
	}
	if clData == nil {
		if clData, err = os.ReadFile(clName); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "engine: plan: %v", err)
		}
	} else {
		clName = "cluster.pb (candidate)"
		if req.ClusterName != "" {
			clName = req.ClusterName
		}
	}
	res := config.CheckData(engName, engData, clName, clData)
	if err := res.Err(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "engine: plan: the candidate config is rejected:\n%v", err)
	}
	if res.ThisNode == nil {
		return nil, status.Errorf(codes.InvalidArgument, "engine: plan: this node (%s) is not a node of the candidate cluster", res.Engine.Node.IPv4)
	}
	e.mu.Lock()
	in := dataplane.Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode, Overrides: e.overridesInput(), Marks: maps.Clone(e.marks)}
	health := maps.Clone(e.results)
	ha := e.ht.state(e.now())
	prev := e.plan
	e.mu.Unlock()
	p := dataplane.Compute(in, ha, health, prev)
	resp := &enginepb.PlanResponse{Desired: p.Desired}
	for _, w := range res.Warnings {
		resp.Warnings = append(resp.Warnings, w.String())
	}
	resp.Warnings = append(resp.Warnings, p.Model.Warnings...)
	if e.ncc == nil {
		resp.Warnings = append(resp.Warnings, "no NCC: the changes are not known")
		return resp, nil
	}
	ar, err := e.ncc.Apply(ctx, &nccpb.ApplyRequest{Desired: p.Desired, DryRun: true})
	if err != nil {
		return nil, status.Errorf(status.Code(err), "engine: plan: the NCC's dry run: %v", status.Convert(err).Message())
	}
	resp.Changes, resp.Errors, resp.ChangesOmitted = ar.Changes, ar.Errors, ar.ChangesOmitted
	return resp, nil
}

// PlanFiles is `seesaw_engine plan`: the desired state the files give this
// node (the one seesaw.cfg names), in the HA state given, with every check
// healthy or every check unhealthy, computed as the engine would, without
// any daemon. It returns the load's result too, for its warnings.
func PlanFiles(engineConf, clusterConf string, ha seesawpb.HAState, healthy bool) (*dataplane.Plan, *config.Result, error) {
	res := config.Check(engineConf, clusterConf)
	if err := res.Err(); err != nil {
		return nil, res, err
	}
	if res.ThisNode == nil {
		return nil, res, fmt.Errorf("%s: node_ipv4 %s is not a node of %s", engineConf, res.Engine.Node.IPv4, clusterConf)
	}
	m := dataplane.Derive(dataplane.Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode})
	health := dataplane.Health{}
	for _, c := range m.Checks.Upsert {
		health[c.Id] = &hcpb.Result{Id: c.Id, Healthy: healthy, Message: "assumed by seesaw_engine plan"}
	}
	return m.Evaluate(ha, health, nil), res, nil
}
