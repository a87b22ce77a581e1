package ipc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// relayComponent answers Status with the relayed caller it believes, in
// Version ("-" when it believes none).
type relayComponent struct {
	seesawpb.UnimplementedComponentServer
	trusted func(Cred) bool
}

func (c relayComponent) Status(ctx context.Context, _ *seesawpb.StatusRequest) (*seesawpb.ComponentStatus, error) {
	who, _, ok := RelayedCaller(ctx, c.trusted)
	if !ok {
		who = "-"
	}
	return &seesawpb.ComponentStatus{Version: who}, nil
}

// TestRelayedCaller: over a real socket, a relayed caller's name is
// believed from a caller whose uid (from SO_PEERCRED) the server trusts,
// and ignored from anyone else; what metadata cannot carry is replaced.
func TestRelayedCaller(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted func(Cred) bool
		ctx     func(context.Context) context.Context
		want    string
	}{
		{"trusted relay", func(c Cred) bool { return c.UID == uint32(os.Geteuid()) },
			func(ctx context.Context) context.Context { return WithRelayedCaller(ctx, "alice (admin)") }, "alice (admin)"},
		{"trusted relay, a name metadata cannot carry", func(c Cred) bool { return c.UID == uint32(os.Geteuid()) },
			func(ctx context.Context) context.Context { return WithRelayedCaller(ctx, "zoë\n") }, "zo??"},
		{"another uid's word", func(c Cred) bool { return c.UID == 12345 },
			func(ctx context.Context) context.Context { return WithRelayedCaller(ctx, "alice (admin)") }, "-"},
		{"no trust at all", nil,
			func(ctx context.Context) context.Context { return WithRelayedCaller(ctx, "alice (admin)") }, "-"},
		{"trusted, but names no one", func(Cred) bool { return true },
			func(ctx context.Context) context.Context { return ctx }, "-"},
		{"trusted, two names", func(Cred) bool { return true },
			func(ctx context.Context) context.Context {
				return metadata.AppendToOutgoingContext(ctx, RelayCallerKey, "a", RelayCallerKey, "b")
			}, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "r", "r.sock")
			cc := serveComponent(t, sock, Policy{Read: Rule{Anyone: true}}, relayComponent{trusted: tc.trusted})
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			st, err := seesawpb.NewComponentClient(cc).Status(tc.ctx(cctx), &seesawpb.StatusRequest{}, grpcWaitForReady)
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tc.want {
				t.Errorf("relayed caller %q, want %q", st.Version, tc.want)
			}
		})
	}
}
