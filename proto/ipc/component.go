package ipc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Version is the appliance's version as every daemon reports it. The build
// sets it with
//
//	-ldflags "-X github.com/seesawlb/seesaw/proto/ipc.Version=<version>"
//
// and a plain `go build` leaves "dev".
var Version = "dev"

// Component serves seesaw.Component/Status for one daemon. The daemon keeps
// it up to date with the setters as its facilities come and go; each Status
// call returns a consistent snapshot. The process is healthy exactly when
// every facility it reports is available, so a daemon that lacks something
// says so by reporting that facility unavailable, never by a separate flag
// that could disagree with it.
type Component struct {
	seesawpb.UnimplementedComponentServer

	name    string
	pid     int32
	started time.Time

	mu         sync.Mutex
	state      string
	facilities []*seesawpb.Facility // in the order first reported
	warnings   []string
	details    map[string]string
	hook       func(*seesawpb.ComponentStatus)
}

// NewComponent returns the status of the daemon called name ("engine",
// "ncc", ...), started now, with no facilities yet.
func NewComponent(name string) *Component {
	return &Component{
		name:    name,
		pid:     int32(os.Getpid()),
		started: time.Now(),
		details: map[string]string{},
	}
}

// Name is the component's name.
func (c *Component) Name() string { return c.name }

// SetFacility records whether the daemon has the named facility, replacing
// what was reported for that name before. It returns true when the
// availability changed (or the facility is new), so that a caller can log
// transitions once instead of on every probe.
func (c *Component) SetFacility(name string, available bool, detail string) (changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.facilities {
		if f.Name == name {
			changed = f.Available != available
			f.Available, f.Detail = available, detail
			return changed
		}
	}
	c.facilities = append(c.facilities, &seesawpb.Facility{Name: name, Available: available, Detail: detail})
	return true
}

// Facility returns the facility reported under name.
func (c *Component) Facility(name string) (*seesawpb.Facility, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.facilities {
		if f.Name == name {
			return &seesawpb.Facility{Name: f.Name, Available: f.Available, Detail: f.Detail}, true
		}
	}
	return nil, false
}

// SetWarnings replaces the warnings.
func (c *Component) SetWarnings(w ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = slices.Clone(w)
}

// SetDetail sets one component-specific fact; an empty value removes it.
func (c *Component) SetDetail(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if value == "" {
		delete(c.details, key)
		return
	}
	c.details[key] = value
}

// SetState sets the one-line state. Empty (the default) derives it:
// "serving" when healthy, else "degraded: " and the missing facilities.
func (c *Component) SetState(state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = state
}

// SetHook installs a function that may add to each snapshot before it is
// returned (for facts cheaper to compute on demand than to keep current).
// It runs without the component's lock held and must not call its setters.
func (c *Component) SetHook(f func(*seesawpb.ComponentStatus)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = f
}

// Snapshot returns the current status.
func (c *Component) Snapshot() *seesawpb.ComponentStatus {
	c.mu.Lock()
	st := &seesawpb.ComponentStatus{
		Component: c.name,
		Version:   Version,
		Pid:       c.pid,
		Started:   timestamppb.New(c.started),
		Healthy:   true,
		Warnings:  slices.Clone(c.warnings),
		Details:   maps.Clone(c.details),
	}
	var missing []string
	for _, f := range c.facilities {
		st.Facilities = append(st.Facilities, &seesawpb.Facility{Name: f.Name, Available: f.Available, Detail: f.Detail})
		if !f.Available {
			st.Healthy = false
			missing = append(missing, f.Name)
		}
	}
	st.State = c.state
	hook := c.hook
	c.mu.Unlock()

	if st.State == "" {
		if st.Healthy {
			st.State = "serving"
		} else {
			st.State = "degraded: " + strings.Join(missing, ", ") + " unavailable"
		}
	}
	if hook != nil {
		if st.Details == nil {
			st.Details = map[string]string{}
		}
		hook(st)
	}
	return st
}

// Status implements seesaw.Component.
func (c *Component) Status(context.Context, *seesawpb.StatusRequest) (*seesawpb.ComponentStatus, error) {
	return c.Snapshot(), nil
}

// ErrUnknownName is wrapped by LookupUser and LookupGroup when the system has
// no user or group of that name.
var ErrUnknownName = errors.New("no such user or group")

// LookupUser resolves a user name (or a uid listed in /etc/passwd) to its uid
// and primary gid. Without cgo os/user reads /etc/passwd only, so a user
// known only to an NSS module is reported unknown.
func LookupUser(name string) (uid, gid uint32, err error) {
	if name == "" {
		return 0, 0, errors.New("ipc: lookup user: empty name")
	}
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return 0, 0, fmt.Errorf("ipc: lookup user %q: %w", name, err)
		}
		u, err = user.LookupId(name)
		if err != nil {
			return 0, 0, fmt.Errorf("ipc: lookup user %q: %w (create it, or fix the flag)", name, ErrUnknownName)
		}
	}
	id, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("ipc: lookup user %q: uid %q is not a number", name, u.Uid)
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("ipc: lookup user %q: gid %q is not a number", name, u.Gid)
	}
	return uint32(id), uint32(g), nil
}

// LookupGroup resolves a group name to its gid. A number is taken as a gid
// as it is, listed in /etc/group or not.
func LookupGroup(name string) (uint32, error) {
	if name == "" {
		return 0, errors.New("ipc: lookup group: empty name")
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		var unknown user.UnknownGroupError
		if !errors.As(err, &unknown) {
			return 0, fmt.Errorf("ipc: lookup group %q: %w", name, err)
		}
		if id, perr := strconv.ParseUint(name, 10, 32); perr == nil {
			return uint32(id), nil
		}
		return 0, fmt.Errorf("ipc: lookup group %q: %w (create it, or give a gid)", name, ErrUnknownName)
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("ipc: lookup group %q: gid %q is not a number", name, g.Gid)
	}
	return uint32(id), nil
}

// LookupUsers resolves a comma-separated list of user names to uids. A
// number is taken as a uid as it is. An empty list gives no uids.
func LookupUsers(list string) ([]uint32, error) {
	var ids []uint32
	for _, n := range splitList(list) {
		if id, err := strconv.ParseUint(n, 10, 32); err == nil {
			ids = append(ids, uint32(id))
			continue
		}
		uid, _, err := LookupUser(n)
		if err != nil {
			return nil, err
		}
		ids = append(ids, uid)
	}
	return ids, nil
}

// LookupGroups resolves a comma-separated list of group names to gids. An
// empty list gives no gids.
func LookupGroups(list string) ([]uint32, error) {
	var ids []uint32
	for _, n := range splitList(list) {
		gid, err := LookupGroup(n)
		if err != nil {
			return nil, err
		}
		ids = append(ids, gid)
	}
	return ids, nil
}

func splitList(list string) []string {
	var out []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
