package ecu

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"

	"strings"
	"testing"
)

// TestPageFromAFixedEngine: the page shows what broke first, with words
// as well as colours, and the state of the node and config.
func TestPageFromAFixedEngine(t *testing.T) {
	base := runFixedECU(t)
	code, body := get(t, base+"/")
	if code != 200 {
		t.Fatalf("/: %d", code)
	}
	for _, want := range []string{
		`<span class="badge ok" id="ha">master</span> for 1h0m`,
		"2 transitions · adverts 3600 sent, 2 received · master 192.0.2.1",
		"source <b>disk</b>, loaded 2h0m ago",
		"vserver web: no healthcheck on port 443",
		`<span class="badge degraded">degraded</span> destination web/198.51.100.3:80/TCP: unhealthy: HTTP/80: connection refused`,
		`data-dest="web/198.51.100.3:80/TCP"`,
		`<span class="badge down">unhealthy 1m0s</span>`, // time in state, from the event log
		"HTTP/80: connection refused",
		`<td>1.0k</td><td>5/s</td><td>1.0MiB</td>`,
		"out of service: HTTP/80: connection refused",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// Broken first: web (degraded) before api (up); in web, the unhealthy
	// destination before the healthy one.
	if w, a := strings.Index(body, `data-name="web"`), strings.Index(body, `data-name="api"`); w < 0 || a < 0 || w > a {
		t.Errorf("web at %d, api at %d: the degraded vserver should come first", w, a)
	}
	if d3, d1 := strings.Index(body, `data-dest="web/198.51.100.3:80/TCP"`), strings.Index(body, `data-dest="web/198.51.100.1:80/TCP"`); d3 > d1 {
		t.Error("in web, the unhealthy destination should come first")
	}
	// No asset from anywhere: no src= or href= to another host, and the
	// live part is the same rendering.
	for _, bad := range []string{"http://", "https://", "src=\"//", "@import"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page refers to another host: %q", bad)
		}
	}
	if _, live := get(t, base+"/?live=1"); !strings.Contains(live, `data-name="web"`) || strings.Contains(live, "<html") {
		t.Errorf("/?live=1 is not the live part alone:\n%.300s", live)
	}
}

// TestPageCollapsesABigConfig: above collapseAbove destinations, a vserver
// that is fine is one row (with a link to it in full), a broken one is in
// full, and ?vserver= shows one vserver in full.
func TestPageCollapsesABigConfig(t *testing.T) {
	vs := fixedVservers()
	web := vs[1]
	svc := web.Services[0]
	for i := range collapseAbove {
		d := proto.CloneOf(svc.Destinations[0])
		d.Name = fmt.Sprintf("api/10.9.%d.%d:443/TCP", i/250, i%250)
		vs[0].Services[0].Destinations = append(vs[0].Services[0].Destinations, d)
	}
	s := &snapshot{Cluster: &enginepb.ClusterStatusResponse{Site: "x"}, Vservers: vs}
	var all, one strings.Builder
	must(t, pageTmpl.ExecuteTemplate(&all, "live", buildPage(s, t0, "")))
	must(t, pageTmpl.ExecuteTemplate(&one, "live", buildPage(s, t0, "api")))
	if !strings.Contains(all.String(), `<a href="/?vserver=api">show</a>`) || strings.Contains(all.String(), `data-dest="api/`) {
		t.Error("the healthy vserver api is not collapsed")
	}
	if !strings.Contains(all.String(), `data-dest="web/198.51.100.3:80/TCP"`) {
		t.Error("the degraded vserver web is not in full")
	}
	if n := strings.Count(one.String(), `data-dest="api/`); n != collapseAbove+2 {
		t.Errorf("?vserver=api shows %d destinations, want %d", n, collapseAbove+2)
	}
	if strings.Contains(one.String(), `data-name="web"`) {
		t.Error("?vserver=api shows web too")
	}
}

// TestPageBanners: dual master, a rejected config (with its file:line:col)
// and stale data each have their banner; a healthy snapshot has none.
func TestPageBanners(t *testing.T) {
	render := func(s *snapshot) string {
		var b strings.Builder
		must(t, pageTmpl.ExecuteTemplate(&b, "live", buildPage(s, t0, "")))
		return b.String()
	}
	ok := &snapshot{Taken: t0, Cluster: &enginepb.ClusterStatusResponse{Site: "x"}, HA: &hapb.Status{State: seesawpb.HAState_HA_STATE_LEADER},
		Config: &enginepb.ConfigStatusResponse{Source: "disk"}}
	if got := render(ok); strings.Contains(got, `class="banner`) {
		t.Errorf("a healthy snapshot has a banner:\n%s", got)
	}
	old := &snapshot{Taken: t0, Cluster: ok.Cluster, DualMasterAt: t0.Add(-time.Hour), Config: ok.Config,
		HA: &hapb.Status{State: seesawpb.HAState_HA_STATE_LEADER, DualMaster: 3, Warning: "long ago"}}
	if got := render(old); strings.Contains(got, `id="dualmaster"`) || !strings.Contains(got, "3 dual-master adverts since HA started; the last: long ago") {
		t.Errorf("a dual master an hour ago is a red banner, or not mentioned:\n%s", got)
	}
	bad := &snapshot{Taken: t0.Add(-time.Minute), Stale: true, EngineErr: "ClusterStatus: connection refused", DualMasterAt: t0.Add(-time.Minute),
		Cluster: ok.Cluster,
		HA: &hapb.Status{State: seesawpb.HAState_HA_STATE_LEADER, DualMaster: 3,
			Warning: "2026-12-03T11:59:00Z: advert from master 192.0.2.2 (priority 254) while master"},
		Config: &enginepb.ConfigStatusResponse{Source: "disk", LastError: "cluster.pb:3:7: unknown field \"nmae\"", LastErrorTime: ts(-time.Minute)}}
	got := render(bad)
	for _, want := range []string{
		`id="stale">STALE: the engine does not answer (ClusterStatus: connection refused); showing what it said 1m0s ago.`,
		`id="dualmaster">DUAL MASTER: 2026-12-03T11:59:00Z: advert from master 192.0.2.2 (priority 254) while master`,
		`id="rejected">Config rejected 1m0s ago; the running config keeps serving:<pre>cluster.pb:3:7: unknown field &#34;nmae&#34;</pre>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}
