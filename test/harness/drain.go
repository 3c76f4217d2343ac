package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// DrainOptions configures ExerciseDrain.
type DrainOptions struct {
	// Request builds one request to send (called once per RPC, so tokens
	// are fresh) and Expect is what each answer must be.
	Request func() (Built, error)
	Expect  conformance.Expect
	Held    int           // RPCs held in flight across SIGTERM; 8 when 0
	Workers int           // concurrent Check loops; 8 when 0
	Timeout time.Duration // for each wait; DefaultStopTimeout when 0
}

// DrainReport counts what ExerciseDrain saw; Problems lists every breach
// of docs/CONTRACT.md §2 ("SIGTERM drains in-flight checks, reports NOT_SERVING on
// health, then exits 0").
type DrainReport struct {
	HeldAnswered   int // held RPCs answered after SIGTERM
	LoadAnswered   int // loop RPCs answered
	LoadRefused    int // loop RPCs refused (Unavailable) after SIGTERM
	SawNotServing  bool
	DuringDrainNew string // what a new connection got during the drain
	ExitCode       int
	Problems       []string
}

// ExerciseDrain stops s with SIGTERM while checks are in flight:
//
//  1. it opens opts.Held Check streams whose headers the server has
//     received (a health Check on the same connection is the barrier:
//     HTTP/2 frames are read in order) but whose request message is held
//     back, so the server must count them as in flight;
//  2. it runs opts.Workers loops of Check on another connection and waits
//     until each has had an answer;
//  3. it watches grpc.health.v1 and sends SIGTERM;
//  4. it wants NOT_SERVING on the watch, then tries a new connection (it
//     must be refused or answered, nothing else), then sends the held
//     requests: each must get a real answer matching opts.Expect;
//  5. it wants the process to exit 0, and every loop RPC to have been
//     answered or, after SIGTERM, refused with Unavailable.
//
// A loop RPC that started before SIGTERM and was refused is accepted: the
// client cannot tell a dropped call from one Envoy would retry; the held
// RPCs are the exact test of draining.
func ExerciseDrain(ctx context.Context, s *Server, opts DrainOptions) DrainReport {
	if opts.Held == 0 {
		opts.Held = 8
	}
	if opts.Workers == 0 {
		opts.Workers = 8
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultStopTimeout
	}
	var rep DrainReport
	bad := func(format string, args ...any) {
		rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// 1. Held RPCs.
	conn := s.Conn()
	held := make([]grpc.ClientStream, 0, opts.Held)
	for range opts.Held {
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "Check", ClientStreams: true}, checkMethod)
		if err != nil {
			bad("opening a held Check stream: %v", err)
			return rep
		}
		held = append(held, st)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		bad("health Check (barrier after the held streams): %v", err)
		return rep
	}

	// 2. Check loops on their own connection.
	loadConn, err := Dial(s.GRPCAddr)
	if err != nil {
		bad("dial: %v", err)
		return rep
	}
	defer loadConn.Close()
	var (
		mu      sync.Mutex
		records []rpcRecord
		sigAt   time.Time // zero until SIGTERM is sent
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	firstAnswers := make(chan error, opts.Workers)
	client := authv3.NewAuthorizationClient(loadConn)
	for range opts.Workers {
		wg.Go(func() {
			first := true
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := opts.Request()
				if err != nil {
					if first {
						firstAnswers <- err
					}
					return
				}
				start := time.Now()
				resp, err := client.Check(ctx, b.Check)
				mu.Lock()
				records = append(records, rpcRecord{built: b, start: start, end: time.Now(), resp: resp, err: err})
				mu.Unlock()
				if first {
					first = false
					firstAnswers <- err
				}
				if err != nil {
					return
				}
			}
		})
	}
	for range opts.Workers {
		if err := <-firstAnswers; err != nil {
			bad("a Check before SIGTERM failed: %v", err)
		}
	}
	if len(rep.Problems) > 0 {
		close(stop)
		wg.Wait()
		return rep
	}

	// 3. Watch health, then SIGTERM.
	watchConn, err := Dial(s.GRPCAddr)
	if err != nil {
		bad("dial: %v", err)
		return rep
	}
	defer watchConn.Close()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(watchConn).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		bad("health Watch: %v", err)
		return rep
	}
	statuses := make(chan healthpb.HealthCheckResponse_ServingStatus, 16)
	watchErr := make(chan error, 1)
	go func() {
		for {
			resp, err := watch.Recv()
			if err != nil {
				watchErr <- err
				return
			}
			statuses <- resp.GetStatus()
		}
	}()
	if st, err := nextStatus(statuses, watchErr, opts.Timeout); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		bad("health Watch before SIGTERM = %v, %v, want SERVING", st, err)
	}
	mu.Lock()
	sigAt = time.Now()
	mu.Unlock()
	if err := s.Signal(syscall.SIGTERM); err != nil {
		bad("SIGTERM: %v", err)
		return rep
	}

	// 4. NOT_SERVING, a new connection, then the held requests.
	deadline := time.Now().Add(opts.Timeout)
	for !rep.SawNotServing {
		st, err := nextStatus(statuses, watchErr, time.Until(deadline))
		if err != nil {
			bad("health never reported NOT_SERVING after SIGTERM: %v", err)
			break
		}
		rep.SawNotServing = st == healthpb.HealthCheckResponse_NOT_SERVING
	}
	stopWatch() // an open Watch would hold a graceful stop forever

	if newConn, err := Dial(s.GRPCAddr); err != nil {
		bad("dial: %v", err)
	} else {
		b, err := opts.Request()
		if err == nil {
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := authv3.NewAuthorizationClient(newConn).Check(cctx, b.Check)
			ccancel()
			switch {
			case err == nil:
				rep.DuringDrainNew = "answered"
				for _, p := range Compare(opts.Expect, b, Interpret(b, resp)) {
					bad("new connection during the drain: %s", p)
				}
			case status.Code(err) == codes.Unavailable:
				rep.DuringDrainNew = "refused"
			default:
				bad("new connection during the drain: Check = %v, want refused (Unavailable) or an answer", err)
			}
		}
		_ = newConn.Close()
	}

	for i, st := range held {
		b, err := opts.Request()
		if err != nil {
			bad("request: %v", err)
			break
		}
		var resp authv3.CheckResponse
		err = st.SendMsg(b.Check)
		if err == nil {
			err = st.CloseSend()
		}
		if err == nil || errors.Is(err, io.EOF) { // io.EOF: the status is RecvMsg's
			err = st.RecvMsg(&resp)
		}
		if err != nil {
			bad("in-flight Check %d (held across SIGTERM) = %v, want a real answer", i, err)
			continue
		}
		rep.HeldAnswered++
		for _, p := range Compare(opts.Expect, b, Interpret(b, &resp)) {
			bad("in-flight Check %d: %s", i, p)
		}
	}

	// 5. Exit 0; every loop RPC answered or refused after SIGTERM.
	close(stop)
	code, err := s.Wait(opts.Timeout)
	rep.ExitCode = code
	if err != nil || code != 0 {
		bad("after SIGTERM: exit %d, %v, want exit 0", code, err)
	}
	wg.Wait()
	if c, err := net.DialTimeout("tcp", s.GRPCAddr, time.Second); err == nil {
		_ = c.Close()
		bad("%s still accepts connections after the process exited", s.GRPCAddr)
	}
	for _, r := range records {
		switch {
		case r.err == nil:
			rep.LoadAnswered++
			for _, p := range Compare(opts.Expect, r.built, Interpret(r.built, r.resp)) {
				bad("Check during the drain test: %s", p)
			}
		case status.Code(r.err) == codes.Unavailable && r.end.After(sigAt):
			rep.LoadRefused++
		default:
			bad("Check started %s and ended %s with %v, want an answer or, after SIGTERM, Unavailable",
				relative(r.start, sigAt), relative(r.end, sigAt), r.err)
		}
	}
	rep.Problems = dedupe(rep.Problems)
	return rep
}

// dedupe keeps the first of equal problems, with a count: the loops send
// the same request thousands of times.
func dedupe(problems []string) []string {
	counts := map[string]int{}
	var order []string
	for _, p := range problems {
		if counts[p] == 0 {
			order = append(order, p)
		}
		counts[p]++
	}
	out := make([]string, 0, len(order))
	for _, p := range order {
		if n := counts[p]; n > 1 {
			p = fmt.Sprintf("%s (%d times)", p, n)
		}
		out = append(out, p)
	}
	return out
}

type rpcRecord struct {
	built      Built
	start, end time.Time
	resp       *authv3.CheckResponse
	err        error
}

func nextStatus(statuses <-chan healthpb.HealthCheckResponse_ServingStatus, errs <-chan error, wait time.Duration) (healthpb.HealthCheckResponse_ServingStatus, error) {
	timer := time.NewTimer(max(wait, 0))
	defer timer.Stop()
	select {
	case st := <-statuses:
		return st, nil
	case err := <-errs:
		return healthpb.HealthCheckResponse_UNKNOWN, fmt.Errorf("watch ended: %w", err)
	case <-timer.C:
		return healthpb.HealthCheckResponse_UNKNOWN, errors.New("timed out")
	}
}

// relative says when t was, relative to SIGTERM at sig.
func relative(t, sig time.Time) string {
	if t.Before(sig) {
		return sig.Sub(t).Round(time.Millisecond).String() + " before SIGTERM"
	}
	return t.Sub(sig).Round(time.Millisecond).String() + " after SIGTERM"
}
