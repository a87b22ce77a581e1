package ecu

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/seesawlb/seesaw/engine/view"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	wdpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// The status page: server-rendered HTML from the view model that the CLI
// renders too (package engine/view), with its CSS and a few lines of
// script embedded; no external asset, no framework. The script polls the
// page's live part (/?live=1) and swaps it in, keeping the filter.

//go:embed web/page.html web/page.css web/page.js
var webFS embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"sev":   func(s view.Severity) string { return s.String() },
	"count": view.Count,
	"bytes": view.Bytes,
	"rate":  view.Rate,
	"dur":   view.Duration,
	"join":  strings.Join,
	"lower": strings.ToLower,
	"css":   func() template.CSS { return template.CSS(mustRead("web/page.css")) },
	"js":    func() template.JS { return template.JS(mustRead("web/page.js")) },
}).ParseFS(webFS, "web/page.html"))

func mustRead(name string) string {
	b, err := webFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pageData is what the page shows, all of it computed here so that the
// template only lays it out.
type pageData struct {
	Now      time.Time
	NoEngine bool   // the engine never answered
	Stale    string // why the data are old, "" when fresh
	Taken    string // age of the data
	Site     string
	Version  string
	Nodes    []*enginepb.Node
	HA       haView
	Config   configView
	Problems []view.Problem
	Summary  view.Summary
	Vservers []vserverView
	Backends []view.Backend
	Checks   []checkView
	Comps    []compView
	Watchdog []wdView
	WDError  string
	Events   []eventView
	// Refresh is how often the page polls, in milliseconds.
	Refresh int
	// Only is the one vserver shown (?vserver=), "" for all; Collapsed
	// counts the vservers shown as one row.
	Only      string
	Collapsed int
	// HiddenChecks and HiddenBackends count the healthy ones a big
	// config's page leaves out.
	HiddenChecks, HiddenBackends int
}

type haView struct {
	Word, Since, Severity string
	Master, Warning       string
	Transitions           uint64
	Sent, Received        uint64
	DualMaster            uint64
	LastUpdate            string
	Priority              uint32
	PeerStale             string
	// DualMasterRecent: dual-master adverts were heard in the last
	// dualMasterBanner.
	DualMasterRecent bool
}

// dualMasterBanner is how long the page keeps its red dual-master banner
// after the last dual-master advert the ECU saw counted.
const dualMasterBanner = 10 * time.Minute

type configView struct {
	Source, Loaded, Updated string
	// LastApply is the NCC's last apply (changes, writes, errors);
	// ApplyFailure why the last attempt failed, if it did.
	LastApply, ApplyFailure string
	Warnings                []string
	Rejected, RejectedAt    string
}

type vserverView struct {
	view.Vserver
	Search   string // what the filter box matches: names, addresses, backends
	Services []serviceView
	// Collapsed: a big config's healthy vserver shows one row, not its
	// destinations (its link shows them).
	Collapsed bool
}

// collapseAbove is how many destinations a page shows in full; above it,
// the destinations of vservers that are fine are left out (a link shows
// them), so that the page stays small where it matters: 1,000 vservers of
// 20 destinations each would be 11 MB of HTML every poll.
const collapseAbove = 2000

type serviceView struct {
	view.Service
	Dests []destView
}

type destView struct {
	view.Destination
	Since string // time in state, from the event log; "" when unknown
}

type checkView struct {
	view.Check
	LastAge string
}

type compView struct {
	Name, State, Version string
	Up, Healthy          bool
	Pid                  int32
	Started              string
	Facilities           []*seesawpb.Facility
	Warnings             []string
	Error                string
}

type wdView struct {
	Name, State, Uptime, LastExit string
	Restarts                      int32
	Severity                      string
}

type eventView struct {
	Time, Age, Kind, Object, Message string
	Problem                          bool
}

// maxPageEvents is how many events the page shows, newest first.
const maxPageEvents = 100

func buildPage(s *snapshot, now time.Time, only string) *pageData {
	d := &pageData{Now: now, Refresh: 2000, Only: only}
	if s.Stale {
		d.Stale = s.EngineErr
	}
	if !s.hasEngine() {
		d.NoEngine = true
	} else {
		d.Taken = view.Age(s.Taken, now)
		d.Site, d.Version, d.Nodes = s.Cluster.Site, s.Cluster.Version, s.Cluster.Nodes
		d.HA = buildHA(s, now)
		if c := s.Config; c != nil {
			d.Config = configView{Source: c.Source, Warnings: c.Warnings, Rejected: c.LastError}
			if c.Loaded != nil {
				d.Config.Loaded = view.Age(c.Loaded.AsTime(), now) + " ago (" + c.Loaded.AsTime().UTC().Format(time.RFC3339) + ")"
			}
			if c.LastUpdate != nil {
				d.Config.Updated = c.LastUpdate.AsTime().UTC().Format(time.RFC3339)
			}
			if c.LastErrorTime != nil {
				d.Config.RejectedAt = view.Age(c.LastErrorTime.AsTime(), now) + " ago"
			}
		}
		if eng := s.Components["engine"]; eng != nil {
			d.Config.LastApply, d.Config.ApplyFailure = eng.Details["ncc_last_apply"], eng.Details["ncc_last_failure"]
		}
		// Time in state: the latest event of each object.
		since := map[string]time.Time{}
		for _, ev := range s.Events {
			since[ev.Object] = ev.Time.AsTime()
		}
		vs := view.Vservers(s.Vservers)
		d.Summary = view.Summarize(vs)
		var warnings []string
		if s.Config != nil {
			warnings = s.Config.Warnings
		}
		d.Problems = view.Problems(vs, warnings)
		dests := 0
		for _, v := range vs {
			dests += v.Total
		}
		for _, v := range view.WorstFirst(vs, func(v view.Vserver) view.Severity { return v.Severity }) {
			if only != "" && v.Name != only {
				continue
			}
			vv := vserverView{Vserver: v, Collapsed: only == "" && dests > collapseAbove && (v.Severity == view.OK || v.Severity == view.Off)}
			if vv.Collapsed {
				d.Collapsed++
			}
			search := []string{v.Name, v.FQDN, v.State}
			search = append(search, v.Addresses...)
			for _, svc := range view.WorstFirst(v.Services, func(s view.Service) view.Severity { return s.Severity }) {
				sv := serviceView{Service: svc}
				search = append(search, svc.Name)
				if vv.Collapsed {
					for _, dst := range svc.Destinations {
						search = append(search, dst.Backend, dst.Address)
					}
					continue
				}
				for _, dst := range view.WorstFirst(svc.Destinations, func(d view.Destination) view.Severity { return d.Severity }) {
					dv := destView{Destination: dst}
					if t, ok := since[dst.Name]; ok {
						dv.Since = view.Age(t, now)
					}
					search = append(search, dst.Backend, dst.Address)
					sv.Dests = append(sv.Dests, dv)
				}
				vv.Services = append(vv.Services, sv)
			}
			vv.Search = strings.ToLower(strings.Join(search, " "))
			d.Vservers = append(d.Vservers, vv)
		}
		big := only == "" && dests > collapseAbove
		for _, b := range view.WorstFirst(view.Backends(s.Backends), func(b view.Backend) view.Severity { return b.Severity }) {
			if big && b.Severity == view.OK {
				d.HiddenBackends++
				continue
			}
			d.Backends = append(d.Backends, b)
		}
		for _, c := range view.WorstFirst(view.Checks(s.Checks), func(c view.Check) view.Severity { return c.Severity }) {
			if big && c.Severity == view.OK {
				d.HiddenChecks++
				continue
			}
			cv := checkView{Check: c}
			if c.Last != nil {
				cv.LastAge = view.Age(c.Last.Time, now)
			}
			d.Checks = append(d.Checks, cv)
		}
		for i := len(s.Events) - 1; i >= 0 && len(d.Events) < maxPageEvents; i-- {
			ev := s.Events[i]
			d.Events = append(d.Events, eventView{Time: ev.Time.AsTime().UTC().Format("2006-01-02 15:04:05"),
				Age: view.Age(ev.Time.AsTime(), now), Kind: ev.Kind, Object: ev.Object, Message: ev.Message, Problem: ev.Problem})
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.Components {
			if !yield(k) {
				return
			}
		}
		for k := range s.ComponentErrs {
			if !yield(k) {
				return
			}
		}
	}) {
		if msg, ok := s.ComponentErrs[name]; ok {
			d.Comps = append(d.Comps, compView{Name: name, Error: msg})
			continue
		}
		st := s.Components[name]
		cv := compView{Name: name, Up: true, Healthy: st.Healthy, State: st.State, Version: st.Version, Pid: st.Pid,
			Facilities: st.Facilities, Warnings: st.Warnings}
		if st.Started != nil {
			cv.Started = view.Age(st.Started.AsTime(), now)
		}
		d.Comps = append(d.Comps, cv)
	}
	d.WDError = s.WatchdogErr
	for _, svc := range s.Watchdog.GetServices() {
		w := wdView{Name: svc.Name, State: watchdogWord(svc.State), Restarts: svc.Restarts, Severity: "ok"}
		if svc.Uptime != nil {
			w.Uptime = view.Duration(svc.Uptime.AsDuration())
		}
		if svc.State != wdpb.ServiceState_SERVICE_STATE_RUNNING {
			w.Severity = "down"
		}
		if le := svc.LastExit; le != nil {
			w.LastExit = fmt.Sprintf("code %d %s %s", le.Code, le.Signal, le.Error)
			if le.Time != nil {
				w.LastExit += ", " + view.Age(le.Time.AsTime(), now) + " ago"
			}
		}
		d.Watchdog = append(d.Watchdog, w)
	}
	return d
}

func buildHA(s *snapshot, now time.Time) haView {
	state := s.Cluster.HaState
	h := haView{}
	if s.HA != nil {
		state = s.HA.State
		h.Master, h.Warning = s.HA.MasterAddress, s.HA.Warning
		h.Transitions, h.Sent, h.Received, h.DualMaster = s.HA.Transitions, s.HA.AdvertsSent, s.HA.AdvertsReceived, s.HA.DualMaster
		h.Priority = s.HA.Priority
		h.DualMasterRecent = !s.DualMasterAt.IsZero() && now.Sub(s.DualMasterAt) < dualMasterBanner
		if s.HA.Since != nil {
			h.Since = view.Age(s.HA.Since.AsTime(), now)
		}
		if s.HA.LastUpdate != nil {
			h.LastUpdate = view.Age(s.HA.LastUpdate.AsTime(), now) + " ago"
			// A backup hears the master every advert interval; HA reports
			// at least that often. Much longer without word: say so.
			mdi := s.HA.MasterDownInterval.AsDuration()
			if mdi <= 0 {
				mdi = 3 * time.Second
			}
			if age := now.Sub(s.HA.LastUpdate.AsTime()); age > 10*mdi {
				h.PeerStale = fmt.Sprintf("no word from HA for %s (master down interval %s)", view.Duration(age), view.Duration(mdi))
			}
		}
	}
	h.Word = view.HAWord(state)
	switch state {
	case seesawpb.HAState_HA_STATE_LEADER, seesawpb.HAState_HA_STATE_BACKUP:
		h.Severity = "ok"
	case seesawpb.HAState_HA_STATE_DISABLED, seesawpb.HAState_HA_STATE_SHUTDOWN:
		h.Severity = "off"
	default:
		h.Severity = "down"
	}
	return h
}

// pageHandler serves the page, or with ?live=1 its live part alone.
func (e *ecu) pageHandler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		e.writeStatus(r.Context(), w)
		return
	}
	s := e.snapshot(r.Context())
	d := buildPage(s, e.cfg.Now(), r.URL.Query().Get("vserver"))
	name := "page.html"
	if r.URL.Query().Get("live") != "" {
		name = "live"
	}
	var buf bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&buf, name, d); err != nil {
		http.Error(w, "ecu: rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Nothing but this origin: the page works on a node without internet,
	// and the browser test proves no request leaves.
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:")
	w.Write(buf.Bytes())
}
