package watchdog

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	watchdogpb "github.com/seesawlb/seesaw/proto/watchdog"
)

func TestServicesResponse(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	snap := Snapshot{
		Started: t0,
		Services: []ServiceStatus{
			{
				Name: "ncc", Binary: "/usr/local/seesaw/seesaw_ncc", Args: []string{"-v=1"},
				State: StateRunning, PID: 42, Started: t0.Add(time.Minute), Uptime: time.Hour, Restarts: 2,
				LastExit: &ExitInfo{Time: t0.Add(30 * time.Second), Code: -1, Signal: "killed", Ran: 3 * time.Second},
				LogFile:  "/var/log/seesaw/seesaw_ncc.log.20300102-030505",
			},
			{
				Name: "engine", Binary: "/usr/local/seesaw/seesaw_engine", Dependencies: []string{"ncc"},
				State: StateBackoff, ConsecutiveFailures: 3, NextBackoff: 4 * time.Second,
				LastExit: &ExitInfo{Time: t0, Code: -1, Err: "fork/exec: no such file or directory"},
			},
		},
	}
	want := &watchdogpb.ServicesResponse{
		Started: timestamppb.New(t0),
		Services: []*watchdogpb.Service{
			{
				Name: "ncc", Binary: "/usr/local/seesaw/seesaw_ncc", Args: []string{"-v=1"},
				State: watchdogpb.ServiceState_SERVICE_STATE_RUNNING, Pid: 42,
				Started: timestamppb.New(t0.Add(time.Minute)), Uptime: durationpb.New(time.Hour), Restarts: 2,
				LastExit: &watchdogpb.ExitInfo{Time: timestamppb.New(t0.Add(30 * time.Second)), Code: -1, Signal: "killed", Ran: durationpb.New(3 * time.Second)},
				LogFile:  "/var/log/seesaw/seesaw_ncc.log.20300102-030505",
			},
			{
				Name: "engine", Binary: "/usr/local/seesaw/seesaw_engine", Dependencies: []string{"ncc"},
				State: watchdogpb.ServiceState_SERVICE_STATE_BACKOFF, ConsecutiveFailures: 3, NextBackoff: durationpb.New(4 * time.Second),
				LastExit: &watchdogpb.ExitInfo{Time: timestamppb.New(t0), Code: -1, Error: "fork/exec: no such file or directory", Ran: durationpb.New(0)},
			},
		},
	}
	srv := NewServer(func() Snapshot { return snap })
	got, err := srv.Services(context.Background(), &watchdogpb.ServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestStateNumbers keeps State in step with the proto enum it is cast to.
func TestStateNumbers(t *testing.T) {
	for s := StateUnknown; s <= StateStopped; s++ {
		name := watchdogpb.ServiceState(s).String()
		if want := "SERVICE_STATE_" + map[State]string{
			StateUnknown: "UNKNOWN", StateWaiting: "WAITING", StateStarting: "STARTING", StateRunning: "RUNNING",
			StateBackoff: "BACKOFF", StateStopping: "STOPPING", StateStopped: "STOPPED",
		}[s]; name != want {
			t.Errorf("State %v is proto %s, want %s", s, name, want)
		}
	}
	if n := len(watchdogpb.ServiceState_name); n != int(StateStopped)+1 {
		t.Errorf("proto has %d states, Go %d", n, StateStopped+1)
	}
}
