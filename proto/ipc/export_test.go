package ipc

import "google.golang.org/grpc"

var grpcWaitForReady = grpc.WaitForReady(true)
