package ipc

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"
)

// A relay (the ECU's remote control) calls a daemon's socket on behalf of
// someone the kernel cannot name: a client certificate's holder on another
// host. It says who in the call's metadata under RelayCallerKey. The
// metadata is the caller's word, so a server believes it only from a
// caller that SO_PEERCRED shows to be a trusted relay (the ECU's uid):
// see RelayedCaller.

// RelayCallerKey is the metadata key that names a relayed call's caller.
const RelayCallerKey = "seesaw-relayed-caller"

// maxRelayedName bounds the name a relay may give.
const maxRelayedName = 256

// WithRelayedCaller returns ctx whose outgoing calls name who as their
// caller. Characters that metadata cannot carry become '?'.
func WithRelayedCaller(ctx context.Context, who string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, RelayCallerKey, cleanName(who))
}

// RelayedCaller returns the name a relay gave for the call in ctx, and the
// relay's own credentials, when the caller is a relay that trusted
// accepts; otherwise ok is false (a name from anyone else is ignored).
func RelayedCaller(ctx context.Context, trusted func(Cred) bool) (who string, relay Cred, ok bool) {
	relay, ok = CredFromContext(ctx)
	if !ok || trusted == nil || !trusted(relay) {
		return "", relay, false
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vs := md.Get(RelayCallerKey)
	if len(vs) != 1 || vs[0] == "" {
		return "", relay, false
	}
	return cleanName(vs[0]), relay, true
}

// cleanName keeps printable ASCII, bounded in length.
func cleanName(s string) string {
	if len(s) > maxRelayedName {
		s = s[:maxRelayedName]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
