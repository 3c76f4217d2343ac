package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// loadOptions shape one closed-loop run: Concurrency callers, each sending
// its next request as soon as the previous answer arrives, spread over
// Conns gRPC connections.
type loadOptions struct {
	Target      string
	Conns       int
	Concurrency int
	Warmup      time.Duration // run, then discard, before measuring
	Duration    time.Duration // measured
	Timeout     time.Duration // bound of one call and of connecting
	ServerPID   int           // > 0: report the server's CPU time per check
	// ServerCore is the CPU the server is pinned to, -1 if none: with
	// ServerPID, the run reports how busy other work kept that CPU.
	ServerCore int
	// Rate > 0 makes the run open-loop: Rate checks a second on a fixed
	// schedule, whatever the answers take, at most Concurrency in flight
	// (a check due while that many are in flight is not sent: Late).
	Rate float64
}

func (o loadOptions) validate() error {
	var errs []error
	if o.Target == "" {
		errs = append(errs, errors.New("--target: empty"))
	}
	if o.Conns < 1 {
		errs = append(errs, fmt.Errorf("--conns %d: want at least 1", o.Conns))
	}
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency %d: want at least 1", o.Concurrency))
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("--warmup %v: want 0 or more", o.Warmup))
	}
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration %v: want more than 0", o.Duration))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %v: want more than 0", o.Timeout))
	}
	if o.Rate < 0 || o.Rate != o.Rate || o.Rate > 1e6 {
		errs = append(errs, fmt.Errorf("--rate %v: want 0 (closed loop) or a rate up to 1e6 checks/s", o.Rate))
	}
	if o.ServerPID < 0 {
		errs = append(errs, fmt.Errorf("--server-pid %d: want a process id", o.ServerPID))
	}
	return errors.Join(errs...)
}

// Latency is a latency summary in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Result is the outcome of one measured run (the warm-up excluded).
type Result struct {
	Target      string  `json:"target"`
	Conns       int     `json:"conns"`
	Concurrency int     `json:"concurrency"`
	Fresh       bool    `json:"fresh"`
	Pool        int     `json:"pool"` // distinct requests (tokens) available
	Warmup      float64 `json:"warmup_s"`
	Seconds     float64 `json:"seconds"` // measured wall time, until the last answer
	// Exhausted: a fresh run used up its tokens before Duration; the
	// figures hold for the shorter time measured.
	Exhausted bool `json:"exhausted,omitempty"`

	Requests int64   `json:"requests"`
	RPS      float64 `json:"rps"`
	Latency  Latency `json:"latency_us"` // answered calls only

	Allowed int64 `json:"allowed"`
	Denied  int64 `json:"denied"`
	Errors  int64 `json:"errors"` // calls that failed at the gRPC level
	// DeniedByStatus counts denials by HTTP status ("403"; "0" = none given).
	DeniedByStatus map[string]int64 `json:"denied_by_status,omitempty"`
	// Unexpected counts answers that differ from what the token calls for
	// (allow, deny 403 for its scopes, or 401 for an invalid token): a key, algorithm or audience that does
	// not match the server, or a server that decides wrongly. A no-op
	// server allows everything, so there it is the denied share.
	Unexpected int64  `json:"unexpected"`
	FirstError string `json:"first_error,omitempty"`
	// Rate is the open-loop schedule (checks/s), 0 for a closed loop; Late
	// counts the checks it could not send on time (Concurrency in flight).
	Rate float64 `json:"rate,omitempty"`
	Late int64   `json:"late,omitempty"`

	ServerPID int `json:"server_pid,omitempty"`
	// ServerCPU is the server process's CPU time per check, µs, and
	// ServerUtil its CPU use in cores over the measured time.
	ServerCPU  float64 `json:"server_cpu_us_per_check,omitempty"`
	ServerUtil float64 `json:"server_cpu_cores,omitempty"`
	// OtherOnServerCore is the share of the measured time the server's
	// CPU spent on anything but the server (other processes, interrupts):
	// more than a few percent means the figures are disturbed.
	OtherOnServerCore float64 `json:"other_on_server_cpu"`
	// LoadCPU and LoadUtil are the same for this process: when LoadUtil
	// nears the cores it may use, the client, not the server, is the limit.
	LoadCPU  float64 `json:"load_cpu_us_per_check"`
	LoadUtil float64 `json:"load_cpu_cores"`
}

// tally counts one caller's answers.
type tally struct {
	requests, allowed, denied, errors, unexpected, late int64
	byStatus                                            map[int32]int64
	firstErr                                            error
}

func (t *tally) add(r *wireRequest, oc *checkOutcome, err error) {
	t.requests++
	if err != nil {
		t.errors++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	if oc.code == 0 {
		t.allowed++
		if !r.allow {
			t.unexpected++
		}
		return
	}
	t.denied++
	if t.byStatus == nil {
		t.byStatus = make(map[int32]int64)
	}
	t.byStatus[oc.httpStatus]++
	if oc.httpStatus != r.wantStatus() {
		t.unexpected++
	}
}

func (t *tally) merge(o *tally) {
	t.requests += o.requests
	t.allowed += o.allowed
	t.denied += o.denied
	t.errors += o.errors
	t.unexpected += o.unexpected
	t.late += o.late
	for k, v := range o.byStatus {
		if t.byStatus == nil {
			t.byStatus = make(map[int32]int64)
		}
		t.byStatus[k] += v
	}
	if t.firstErr == nil {
		t.firstErr = o.firstErr
	}
}

// loader drives the callers of one run.
type loader struct {
	conns   []*grpc.ClientConn
	wl      *workload
	callOpt []grpc.CallOption
	conc    int
	timeout time.Duration
	rate    float64       // > 0: open loop (openPhase)
	cursor  atomic.Uint64 // next request; shared by all phases
}

// runLoad connects, warms up, then measures one run of wl against the
// target. It returns when the measured phase is over and every call has
// answered, or with an error if the target is unreachable or ctx ends.
func runLoad(ctx context.Context, opt loadOptions, wl *workload) (*Result, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if wl == nil || len(wl.reqs) == 0 {
		return nil, errors.New("no requests to send")
	}
	codec, err := newWireCodec()
	if err != nil {
		return nil, err
	}
	conns, err := dial(ctx, opt.Target, opt.Conns, opt.Timeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	l := &loader{
		conns:   conns,
		wl:      wl,
		callOpt: []grpc.CallOption{grpc.ForceCodecV2(codec)},
		conc:    opt.Concurrency,
		timeout: opt.Timeout,
		rate:    opt.Rate,
	}
	n := uint64(len(wl.reqs))
	// A fresh run keeps most of its single-use tokens for the measurement.
	warmLimit, limit := n, n
	if wl.fresh {
		warmLimit = n / 5
	}
	if opt.Warmup > 0 {
		if _, _, _, err := l.phase(ctx, opt.Warmup, warmLimit, newHistogram()); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}

	var srvBefore, srvAfter, coreBefore, coreAfter time.Duration
	watchCore := opt.ServerPID > 0 && opt.ServerCore >= 0
	if opt.ServerPID > 0 {
		if srvBefore, err = processCPU(opt.ServerPID); err != nil {
			return nil, err
		}
	}
	if watchCore {
		if coreBefore, err = cpuBusy(opt.ServerCore); err != nil {
			return nil, err
		}
	}
	selfBefore, err := selfCPU()
	if err != nil {
		return nil, err
	}
	hist := newHistogram()
	t, elapsed, exhausted, err := l.phase(ctx, opt.Duration, limit, hist)
	if err != nil {
		return nil, err
	}
	selfAfter, err := selfCPU()
	if err != nil {
		return nil, err
	}
	if opt.ServerPID > 0 {
		if srvAfter, err = processCPU(opt.ServerPID); err != nil {
			return nil, err
		}
	}
	if watchCore {
		if coreAfter, err = cpuBusy(opt.ServerCore); err != nil {
			return nil, err
		}
	}

	res := &Result{
		Target:      opt.Target,
		Conns:       opt.Conns,
		Concurrency: opt.Concurrency,
		Fresh:       wl.fresh,
		Pool:        len(wl.reqs),
		Warmup:      opt.Warmup.Seconds(),
		Seconds:     elapsed.Seconds(),
		Exhausted:   exhausted,
		Requests:    t.requests,
		Allowed:     t.allowed,
		Denied:      t.denied,
		Errors:      t.errors,
		Unexpected:  t.unexpected,
		Rate:        opt.Rate,
		Late:        t.late,
		Latency: Latency{
			P50:  micros(hist.Quantile(0.50)),
			P90:  micros(hist.Quantile(0.90)),
			P99:  micros(hist.Quantile(0.99)),
			P999: micros(hist.Quantile(0.999)),
			Max:  micros(hist.Max()),
			Mean: micros(hist.Mean()),
		},
	}
	if elapsed > 0 {
		res.RPS = float64(t.requests) / elapsed.Seconds()
		res.LoadUtil = (selfAfter - selfBefore).Seconds() / elapsed.Seconds()
	}
	if t.requests > 0 {
		res.LoadCPU = micros(selfAfter-selfBefore) / float64(t.requests)
	}
	if opt.ServerPID > 0 {
		res.ServerPID = opt.ServerPID
		if t.requests > 0 {
			res.ServerCPU = micros(srvAfter-srvBefore) / float64(t.requests)
		}
		if elapsed > 0 {
			res.ServerUtil = (srvAfter - srvBefore).Seconds() / elapsed.Seconds()
			if watchCore {
				other := (coreAfter - coreBefore) - (srvAfter - srvBefore)
				res.OtherOnServerCore = max(other.Seconds(), 0) / elapsed.Seconds()
			}
		}
	}
	if len(t.byStatus) > 0 {
		res.DeniedByStatus = make(map[string]int64, len(t.byStatus))
		for k, v := range t.byStatus {
			res.DeniedByStatus[strconv.Itoa(int(k))] = v
		}
	}
	if t.firstErr != nil {
		s := status.Convert(t.firstErr)
		res.FirstError = s.Code().String() + ": " + s.Message()
	}
	return res, nil
}

// phase runs the callers for d (or, for a fresh workload, until the cursor
// reaches limit) and waits for every call in flight.
func (l *loader) phase(ctx context.Context, d time.Duration, limit uint64, hist *histogram) (tally, time.Duration, bool, error) {
	if l.rate > 0 {
		return l.openPhase(ctx, d, limit, hist)
	}
	var stop, exhausted atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	// No call may outlive the phase by more than one call timeout.
	callCtx, cancel := context.WithTimeout(ctx, d+l.timeout)
	defer cancel()

	var (
		mu    sync.Mutex
		total tally
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w := range l.conc {
		conn := l.conns[w%len(l.conns)]
		wg.Go(func() {
			t := l.caller(callCtx, conn, &stop, &exhausted, limit, hist)
			mu.Lock()
			total.merge(&t)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return tally{}, 0, false, fmt.Errorf("interrupted: %w", err)
	}
	return total, elapsed, exhausted.Load(), nil
}

// next returns the request of cursor position i, false when a fresh
// workload has used up its requests (limit).
func (l *loader) next(i, limit uint64) (*wireRequest, bool) {
	if l.wl.next != nil {
		return l.wl.next(i)
	}
	if l.wl.fresh {
		if i >= limit {
			return nil, false
		}
		return &l.wl.reqs[i], true
	}
	return &l.wl.reqs[i%uint64(len(l.wl.reqs))], true
}

// openPhase sends l.rate checks a second for d on a fixed schedule (open
// loop: a slow answer does not delay the next check), each on its own
// goroutine, at most l.conc in flight; a check due while l.conc are in
// flight is counted late and not sent. It waits for every call in flight.
func (l *loader) openPhase(ctx context.Context, d time.Duration, limit uint64, hist *histogram) (tally, time.Duration, bool, error) {
	callCtx, cancel := context.WithTimeout(ctx, d+l.timeout)
	defer cancel()
	var (
		mu        sync.Mutex
		total     tally
		wg        sync.WaitGroup
		exhausted bool
		sent      uint64
	)
	slots := make(chan struct{}, l.conc)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
loop:
	for {
		elapsed := time.Since(start)
		if elapsed >= d || ctx.Err() != nil {
			break
		}
		for due := uint64(elapsed.Seconds() * l.rate); sent < due; sent++ {
			r, ok := l.next(l.cursor.Add(1)-1, limit)
			if !ok {
				exhausted = true
				break loop
			}
			select {
			case slots <- struct{}{}:
			default:
				mu.Lock()
				total.late++
				mu.Unlock()
				continue
			}
			conn := l.conns[sent%uint64(len(l.conns))]
			wg.Go(func() {
				defer func() { <-slots }()
				var oc checkOutcome
				start := time.Now()
				err := conn.Invoke(callCtx, checkMethod, r, &oc, l.callOpt...)
				if err == nil {
					hist.Record(time.Since(start))
				} else if errors.Is(callCtx.Err(), context.Canceled) {
					return // interrupted
				}
				mu.Lock()
				total.add(r, &oc, err)
				mu.Unlock()
			})
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return tally{}, 0, false, fmt.Errorf("interrupted: %w", err)
	}
	return total, elapsed, exhausted, nil
}

// caller is one closed-loop client: send, wait for the answer, repeat.
func (l *loader) caller(ctx context.Context, conn *grpc.ClientConn, stop, exhausted *atomic.Bool, limit uint64, hist *histogram) tally {
	var (
		t  tally
		oc checkOutcome
	)
	for !stop.Load() {
		r, ok := l.next(l.cursor.Add(1)-1, limit)
		if !ok {
			exhausted.Store(true)
			break
		}
		start := time.Now()
		err := conn.Invoke(ctx, checkMethod, r, &oc, l.callOpt...)
		if err == nil {
			hist.Record(time.Since(start))
		} else if cerr := ctx.Err(); cerr != nil {
			// Past the phase's deadline the call timed out: the server's
			// failure. Cancelled: the run was interrupted.
			if errors.Is(cerr, context.DeadlineExceeded) {
				t.add(r, &oc, err)
			}
			break
		}
		t.add(r, &oc, err)
	}
	return t
}

// dial opens n connections to target and waits until each is ready.
func dial(ctx context.Context, target string, n int, timeout time.Duration) ([]*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conns := make([]*grpc.ClientConn, 0, n)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range n {
		c, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("--target %s: %w", target, err)
		}
		conns = append(conns, c)
		c.Connect()
	}
	for _, c := range conns {
		for s := c.GetState(); s != connectivity.Ready; s = c.GetState() {
			if !c.WaitForStateChange(ctx, s) {
				closeAll()
				return nil, fmt.Errorf("--target %s: not reachable within %v (connection %s)", target, timeout, s)
			}
		}
	}
	return conns, nil
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// sortedStatuses returns the keys of m in numeric order.
func sortedStatuses(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(keys[i])
		b, _ := strconv.Atoi(keys[j])
		return a < b
	})
	return keys
}
