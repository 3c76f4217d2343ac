package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// pinning is where the servers and the load generator run.
type pinning struct {
	enabled   bool
	serverCPU int
	loadCPU   int
	taskset   string // path of taskset(1); "" = pin with sched_setaffinity
	reason    string // why not enabled
}

func pinPlan(serverCPU, loadCPU int) pinning {
	p := pinning{serverCPU: serverCPU, loadCPU: loadCPU}
	switch {
	case serverCPU == loadCPU:
		p.reason = "--server-cpu equals --load-cpu"
	case !cpuAllowed(serverCPU) || !cpuAllowed(loadCPU):
		p.reason = fmt.Sprintf("CPU %d or %d is not available to this process", serverCPU, loadCPU)
	default:
		p.enabled = true
		p.taskset, _ = exec.LookPath("taskset")
	}
	return p
}

func (p pinning) describe() string {
	if !p.enabled {
		return "none (" + p.reason + ")"
	}
	how := "taskset"
	if p.taskset == "" {
		how = "sched_setaffinity, no taskset found"
	}
	return fmt.Sprintf("servers on CPU %d (%s), load on CPU %d", p.serverCPU, how, p.loadCPU)
}

// argv prefixes a server's command line with taskset when it pins.
func (p pinning) argv(argv []string) []string {
	if !p.enabled || p.taskset == "" {
		return argv
	}
	return append([]string{p.taskset, "-c", strconv.Itoa(p.serverCPU)}, argv...)
}

// after pins a started server when taskset could not.
func (p pinning) after(pid int) error {
	if !p.enabled || p.taskset != "" {
		return nil
	}
	return pinProcess(pid, p.serverCPU)
}

// child is a server process started by compare.
type child struct {
	name    string
	addr    string // gRPC address
	admin   string // the service's admin listener (/metrics), "" for the no-op
	pid     int
	cmd     *exec.Cmd
	out     *tail // its stderr (and the service's stdout)
	exited  chan struct{}
	waitErr error // valid once exited is closed
}

// startChild starts argv with env. It dies with this process (SIGKILL on
// parent death), so a crashed comparison leaves nothing running.
func startChild(name string, argv, env []string, stdout io.Writer) (*child, error) {
	c := &child{name: name, out: newTail(16 << 10), exited: make(chan struct{})}
	if stdout == nil {
		stdout = c.out
	}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Env = env
	c.cmd.Stdout = stdout
	c.cmd.Stderr = c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c.pid = c.cmd.Process.Pid
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// stop sends SIGTERM (the service drains and exits 0, docs/CONTRACT.md §2) and
// kills the process if it is still there after a grace period.
func (c *child) stop(log io.Writer) {
	select {
	case <-c.exited:
		return
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		fmt.Fprintf(log, "%s: SIGTERM: %v\n", c.name, err)
	}
	select {
	case <-c.exited:
		if c.waitErr != nil {
			fmt.Fprintf(log, "%s: after SIGTERM: %v\n", c.name, c.waitErr)
		}
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		fmt.Fprintf(log, "%s: still running 10s after SIGTERM: killed\n", c.name)
	}
}

// serviceEnv is this process's environment without the variables the
// service reads (docs/CONTRACT.md §3): they would override the generated
// configuration.
func serviceEnv() []string {
	drop := map[string]bool{
		"JWT_VERIFICATION_KEY": true, "JWT_JWKS_FILE": true, "JWT_JWKS_URL": true,
		"OS_SECURITY_KEY": true, "AGENT_OS_ID": true, "AUTHZ_CONFIG": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a loopback address with a port free at the time of the
// call (the service has no way to report a port it chose itself).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// startService runs "agentos-authz serve" with the configuration file on
// loopback ports, HTTP mode off, and waits until its gRPC health says
// SERVING.
func startService(ctx context.Context, bin, cfg string, pin pinning, timeout time.Duration) (*child, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	argv := pin.argv([]string{bin, "serve", "--config", cfg,
		"--grpc-addr", grpcAddr, "--http-addr", "off", "--admin-addr", adminAddr})
	c, err := startChild("service", argv, serviceEnv(), nil)
	if err != nil {
		return nil, err
	}
	c.addr, c.admin = grpcAddr, adminAddr
	if err := waitServing(ctx, c, timeout); err != nil {
		c.stop(io.Discard)
		return nil, err
	}
	if err := pin.after(c.pid); err != nil {
		c.stop(io.Discard)
		return nil, err
	}
	return c, nil
}

// startNoopChild runs "authz-bench noop" (this program) on a free loopback
// port, reads the address it prints and waits until it serves.
func startNoopChild(ctx context.Context, self string, pin pinning, timeout time.Duration) (*child, error) {
	stdout := newTail(4 << 10)
	first := make(chan string, 1)
	stdout.first = first
	argv := pin.argv([]string{self, "noop", "--addr", "127.0.0.1:0"})
	c, err := startChild("no-op server", argv, os.Environ(), stdout)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(err error) (*child, error) {
		c.stop(io.Discard)
		return nil, err
	}
	select {
	case line := <-first:
		addr, ok := strings.CutPrefix(line, "listening on ")
		if !ok {
			return fail(fmt.Errorf("no-op server printed %q, want \"listening on ADDR\"", line))
		}
		c.addr = addr
	case <-c.exited:
		return fail(fmt.Errorf("no-op server exited at start (%v): %s", c.waitErr, c.out))
	case <-ctx.Done():
		return fail(fmt.Errorf("no-op server printed no address within %v", timeout))
	}
	if err := waitServing(ctx, c, timeout); err != nil {
		return fail(err)
	}
	if err := pin.after(c.pid); err != nil {
		return fail(err)
	}
	return c, nil
}

// waitServing polls c's grpc.health.v1 until it answers SERVING, c exits,
// or timeout passes.
func waitServing(ctx context.Context, c *child, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient(c.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The server is starting: retry the connection quickly.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, Jitter: 0.2, MaxDelay: 250 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return fmt.Errorf("%s at %s: %w", c.name, c.addr, err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		ccancel()
		switch {
		case err != nil:
			last = err
		case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return nil
		default:
			last = fmt.Errorf("health is %s", resp.GetStatus())
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited before serving (%v); its last output:\n%s", c.name, c.waitErr, c.out)
		case <-ctx.Done():
			return fmt.Errorf("%s at %s not serving within %v (%v); its last output:\n%s", c.name, c.addr, timeout, last, c.out)
		case <-tick.C:
		}
	}
}

// tail keeps the last bytes written to it, and can report the first line.
type tail struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	first chan string // if set, receives the first complete line, once
	line  []byte
}

func newTail(limit int) *tail { return &tail{max: limit} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first != nil {
		t.line = append(t.line, p...)
		if i := bytes.IndexByte(t.line, '\n'); i >= 0 {
			t.first <- strings.TrimSpace(string(t.line[:i]))
			t.first, t.line = nil, nil
		}
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
