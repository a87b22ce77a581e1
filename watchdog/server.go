package watchdog

import (
	"context"

	watchdogpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// Server implements the Watchdog gRPC service over a status source, usually
// (*Supervisor).Status. Access control is the transport's business (the IPC
// server checks the method's access level against the caller's credentials).
type Server struct {
	watchdogpb.UnimplementedWatchdogServer
	status func() Snapshot
}

// NewServer returns a Server reporting what status returns.
func NewServer(status func() Snapshot) *Server {
	return &Server{status: status}
}

// Services reports every supervised service.
func (s *Server) Services(context.Context, *watchdogpb.ServicesRequest) (*watchdogpb.ServicesResponse, error) {
	return ServicesResponse(s.status()), nil
}
