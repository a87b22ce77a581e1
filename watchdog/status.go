package watchdog

import (
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	watchdogpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// State is where a service is in its life cycle. The values match
// proto/watchdog's ServiceState.
type State int

const (
	StateUnknown  State = iota
	StateWaiting        // waiting for its dependencies to be running
	StateStarting       // being launched
	StateRunning        // its process is running
	StateBackoff        // exited; waiting before the next start
	StateStopping       // shutting down: waiting for dependents, or signalled
	StateStopped        // supervision of it has ended
)

var stateNames = [...]string{"unknown", "waiting", "starting", "running", "backoff", "stopping", "stopped"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// ExitInfo describes how a run of a service ended.
type ExitInfo struct {
	Time   time.Time
	Code   int           // exit status, or -1 when killed by a signal or never started
	Signal string        // the signal that killed it, e.g. "killed"; empty otherwise
	Err    string        // why it could not be started; empty when it ran
	Ran    time.Duration // how long it ran
}

// Clean reports whether the run ended with exit status 0.
func (e ExitInfo) Clean() bool { return e.Err == "" && e.Signal == "" && e.Code == 0 }

func (e ExitInfo) String() string {
	switch {
	case e.Err != "":
		return "start failed: " + e.Err
	case e.Signal != "":
		return "killed by signal: " + e.Signal + " after " + e.Ran.String()
	default:
		return "exit status " + strconv.Itoa(e.Code) + " after " + e.Ran.String()
	}
}

// ServiceStatus is a snapshot of one supervised service.
type ServiceStatus struct {
	Name         string
	Binary       string
	Args         []string
	Dependencies []string
	State        State
	PID          int           // 0 when no process is running
	Started      time.Time     // start of the current process; zero when none
	Uptime       time.Duration // age of the current process
	Restarts     int           // starts after the first, successful or not
	// ConsecutiveFailures counts failed runs in a row; see Backoff.
	ConsecutiveFailures int
	LastExit            *ExitInfo     // nil until the first run ends
	NextBackoff         time.Duration // the delay being waited in StateBackoff
	LogFile             string        // the current (or last) log file
}

// Snapshot is the status of every service, in config file order.
type Snapshot struct {
	Started  time.Time // when the supervisor started
	Services []ServiceStatus
}

// ServicesResponse converts a snapshot to the Watchdog.Services reply.
func ServicesResponse(s Snapshot) *watchdogpb.ServicesResponse {
	resp := &watchdogpb.ServicesResponse{Started: timestamp(s.Started)}
	for _, svc := range s.Services {
		p := &watchdogpb.Service{
			Name:                svc.Name,
			Binary:              svc.Binary,
			Args:                svc.Args,
			Dependencies:        svc.Dependencies,
			State:               watchdogpb.ServiceState(svc.State),
			Pid:                 int32(svc.PID),
			Started:             timestamp(svc.Started),
			Uptime:              duration(svc.Uptime),
			Restarts:            int32(svc.Restarts),
			ConsecutiveFailures: int32(svc.ConsecutiveFailures),
			NextBackoff:         duration(svc.NextBackoff),
			LogFile:             svc.LogFile,
		}
		if e := svc.LastExit; e != nil {
			p.LastExit = &watchdogpb.ExitInfo{
				Time:   timestamp(e.Time),
				Code:   int32(e.Code),
				Signal: e.Signal,
				Error:  e.Err,
				Ran:    durationpb.New(e.Ran),
			}
		}
		resp.Services = append(resp.Services, p)
	}
	return resp
}

// timestamp leaves zero times unset rather than sending year 1.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func duration(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}
