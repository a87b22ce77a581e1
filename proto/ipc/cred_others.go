//go:build !linux

package ipc

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// peerCreds refuses every connection where SO_PEERCRED does not exist: a
// server that cannot tell who is calling must not answer.
type peerCreds struct{}

type authInfo struct{ cred Cred }

func (authInfo) AuthType() string { return "peercred" }

var errNoPeerCred = errors.New("ipc: caller credentials need SO_PEERCRED (Linux)")

func (peerCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errNoPeerCred
}

func (peerCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, authInfo{}, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (p peerCreds) Clone() credentials.TransportCredentials { return p }

func (peerCreds) OverrideServerName(string) error { return nil }
