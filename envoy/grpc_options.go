package envoy

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// MaxCheckRequestBytes bounds one CheckRequest. Envoy's request headers are
// at most 96 KiB (max_request_headers_kb), plus the body when
// with_request_body is set (max_request_bytes); a larger message is refused
// with RESOURCE_EXHAUSTED before it is decoded.
const MaxCheckRequestBytes = 1 << 20

// Limits of the ext_authz gRPC listener (README, Security). Every one is
// explicit, so a client (or anyone who reaches the port) cannot make a check
// cost more than its size, hold connections open for nothing, or queue
// unbounded work.
const (
	// maxConcurrentStreams bounds the checks in flight on one connection
	// (Envoy multiplexes its checks over a few).
	maxConcurrentStreams = 1024
	// keepaliveMinTime: a client may ping at most this often, even with no
	// check in flight (Envoy's connection_keepalive); more often and the
	// connection is closed (GOAWAY too_many_pings).
	keepaliveMinTime = 10 * time.Second
	// maxConnectionIdle closes a connection with no check for this long.
	maxConnectionIdle = 5 * time.Minute
	// keepaliveTime / keepaliveTimeout: an idle connection is pinged after
	// this long and closed if the ping is not answered.
	keepaliveTime    = 2 * time.Minute
	keepaliveTimeout = 20 * time.Second
	// connectionTimeout bounds a new connection's HTTP/2 handshake.
	connectionTimeout = 10 * time.Second
	// streamWorkers is the number of goroutines kept to run checks. Without
	// them grpc-go starts a goroutine per check, and a check that verifies
	// a signature (RSA: several KiB of stack in crypto/internal/fips140)
	// grows and copies that new goroutine's stack every time: ≈7% of the
	// service's CPU under fresh-token load (README, Performance). A worker
	// keeps its grown stack; a check that finds every worker busy still
	// gets a goroutine of its own, so this bounds nothing.
	streamWorkers = 128
)

// ServerOptions are the options of a gRPC server serving Check: the
// service's ext_authz listener, and the no-op baseline of the load tool
// (cmd/authz-bench), which must differ from the service by the decision
// alone. TLS, when configured, is added by the caller.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxCheckRequestBytes),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: maxConnectionIdle,
			Time:              keepaliveTime,
			Timeout:           keepaliveTimeout,
		}),
		grpc.ConnectionTimeout(connectionTimeout),
		grpc.NumStreamWorkers(streamWorkers),
	}
}
