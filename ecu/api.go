package ecu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// The JSON API: every part of the status page under /api/v1/, each the
// engine's protobuf message in protojson with the .proto field names
// (snake_case) and every field present, so the names are those of
// proto/engine/engine.proto and stay stable as it only grows.
//
// Every answer carries the snapshot's freshness in headers:
// X-Seesaw-Snapshot-Time (RFC 3339) and X-Seesaw-Stale ("true" when the
// engine did not answer and the data are the last known).

var jsonOpts = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// marshal is m in protojson, compacted: protojson's own spacing is
// deliberately unstable, and the API's bytes should not be.
func marshal(m proto.Message) ([]byte, error) {
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (e *ecu) apiHandlers(mux *http.ServeMux) {
	part := func(path string, pick func(*snapshot) (proto.Message, error)) {
		mux.HandleFunc("GET /api/v1/"+path, func(w http.ResponseWriter, r *http.Request) {
			s := e.snapshot(r.Context())
			if !s.hasEngine() {
				apiError(w, http.StatusServiceUnavailable, "the engine has not answered yet: "+s.EngineErr)
				return
			}
			m, err := pick(s)
			if err != nil {
				apiError(w, http.StatusNotFound, err.Error())
				return
			}
			b, err := marshal(m)
			if err != nil {
				apiError(w, http.StatusInternalServerError, err.Error())
				return
			}
			writeJSON(w, s, b)
		})
	}
	part("cluster", func(s *snapshot) (proto.Message, error) { return s.Cluster, nil })
	part("ha", func(s *snapshot) (proto.Message, error) { return s.HA, nil })
	part("config", func(s *snapshot) (proto.Message, error) { return s.Config, nil })
	part("vservers", func(s *snapshot) (proto.Message, error) {
		return &enginepb.VserversResponse{Vservers: s.Vservers}, nil
	})
	mux.HandleFunc("GET /api/v1/vservers/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		s := e.snapshot(r.Context())
		if !s.hasEngine() {
			apiError(w, http.StatusServiceUnavailable, "the engine has not answered yet: "+s.EngineErr)
			return
		}
		for _, v := range s.Vservers {
			if v.Name == name {
				b, err := marshal(v)
				if err != nil {
					apiError(w, http.StatusInternalServerError, err.Error())
					return
				}
				writeJSON(w, s, b)
				return
			}
		}
		apiError(w, http.StatusNotFound, fmt.Sprintf("no vserver %q", name))
	})
	part("backends", func(s *snapshot) (proto.Message, error) {
		return &enginepb.BackendsResponse{Backends: s.Backends}, nil
	})
	part("checks", func(s *snapshot) (proto.Message, error) {
		return &enginepb.ChecksResponse{Checks: s.Checks}, nil
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		var after uint64
		if a := r.URL.Query().Get("after"); a != "" {
			n, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				apiError(w, http.StatusBadRequest, fmt.Sprintf("after=%q: not a sequence number", a))
				return
			}
			after = n
		}
		s := e.snapshot(r.Context())
		if !s.hasEngine() {
			apiError(w, http.StatusServiceUnavailable, "the engine has not answered yet: "+s.EngineErr)
			return
		}
		resp := &enginepb.EventsResponse{}
		for _, ev := range s.Events {
			if ev.Seq > after {
				resp.Events = append(resp.Events, ev)
			}
		}
		if n := len(s.Events); n > 0 {
			resp.NextSeq = s.Events[n-1].Seq + 1
		}
		b, err := marshal(resp)
		if err != nil {
			apiError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, s, b)
	})
	mux.HandleFunc("GET /api/v1/components", func(w http.ResponseWriter, r *http.Request) {
		s := e.snapshot(r.Context())
		b, err := componentsJSON(s)
		if err != nil {
			apiError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, s, b)
	})
}

// componentsJSON is the daemons' status: {"components": {name:
// ComponentStatus}, "unreachable": {name: error}, "watchdog":
// ServicesResponse or null, "watchdog_error": "", "engine": {"stale":
// bool, "error": "", "snapshot_time": ""}}.
func componentsJSON(s *snapshot) ([]byte, error) {
	type engineState struct {
		Stale        bool   `json:"stale"`
		Error        string `json:"error"`
		SnapshotTime string `json:"snapshot_time"`
	}
	out := struct {
		Components    map[string]json.RawMessage `json:"components"`
		Unreachable   map[string]string          `json:"unreachable"`
		Watchdog      json.RawMessage            `json:"watchdog"`
		WatchdogError string                     `json:"watchdog_error"`
		Engine        engineState                `json:"engine"`
	}{Components: map[string]json.RawMessage{}, Unreachable: s.ComponentErrs, Watchdog: json.RawMessage("null"),
		WatchdogError: s.WatchdogErr, Engine: engineState{Stale: s.Stale, Error: s.EngineErr}}
	if !s.Taken.IsZero() {
		out.Engine.SnapshotTime = s.Taken.UTC().Format(time.RFC3339Nano)
	}
	if out.Unreachable == nil {
		out.Unreachable = map[string]string{}
	}
	for name, st := range s.Components {
		b, err := marshal(st)
		if err != nil {
			return nil, err
		}
		out.Components[name] = b
	}
	if s.Watchdog != nil {
		b, err := marshal(s.Watchdog)
		if err != nil {
			return nil, err
		}
		out.Watchdog = b
	}
	return json.Marshal(out)
}

// snapshot is the current snapshot for a request, never nil.
func (e *ecu) snapshot(ctx context.Context) *snapshot {
	if s := e.snaps.get(ctx); s != nil {
		return s
	}
	return &snapshot{Stale: true, EngineErr: "no answer yet"}
}

func writeJSON(w http.ResponseWriter, s *snapshot, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if !s.Taken.IsZero() {
		h.Set("X-Seesaw-Snapshot-Time", s.Taken.UTC().Format(time.RFC3339Nano))
	}
	h.Set("X-Seesaw-Stale", strconv.FormatBool(s.Stale))
	w.Write(b)
	w.Write([]byte("\n"))
}

func apiError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte("\n"))
}
