// Package harness drives agentos-authz as a black box for the tests in test/.
//
// It builds, starts and stops the real binary on loopback (port 0, the bound
// addresses read back from its listening log line), shapes Envoy
// CheckRequests from conformance vectors, applies CheckResponses the way
// Envoy does and compares the result with each vector's expectation. The
// vectors themselves — schema, loader, placeholders, keys, token minting —
// come from internal/conformance.
//
// It must never import the service's own packages (authz, envoy, scopes,
// cmd): everything it knows about the service comes from docs/CONTRACT.md,
// the conformance README and the README, so a bug shared by the service and
// its harness cannot hide behind common code.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// Timeouts for the process under test. Generous: a -race build on two
// busy cores starts slowly; every wait still ends as soon as it can.
const (
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 30 * time.Second
	maxOutput           = 8 << 20
)

// ClearedEnv lists the variables removed from every server's environment
// (README "Running a file's group", step 2).
func ClearedEnv() []string {
	return []string{"JWT_VERIFICATION_KEY", "JWT_JWKS_FILE", "JWT_JWKS_URL", "OS_SECURITY_KEY", "AGENT_OS_ID", "AUTHZ_CONFIG"}
}

// BuildBinary runs `go build [-race] -o outDir/agentos-authz pkg` and
// returns the binary's path; on failure the error carries go's output.
func BuildBinary(ctx context.Context, pkg, outDir string, race bool) (string, error) {
	out := outDir + "/agentos-authz"
	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "-o", out, pkg)
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, gobin, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return out, nil
}

// Options says how to run the binary.
type Options struct {
	Binary       string
	ConfigPath   string            // "" serves without --config
	Env          map[string]string // added to the environment, after ClearedEnv is removed
	Args         []string          // extra serve flags
	StartTimeout time.Duration     // DefaultStartTimeout when 0
	// TLS is the client side of the gRPC listener's TLS (README.md, tls:
	// section): the CA to trust and, for mutual TLS, the client
	// certificate Start and Conn present. nil dials plaintext.
	TLS *tls.Config
}

// Server is a running `agentos-authz serve` on loopback. Its addresses are
// the ones the process reported binding (ListeningAddrs), set once Start
// returns; HTTPAddr is "off" unless Options.Args turned that listener on.
type Server struct {
	GRPCAddr  string
	HTTPAddr  string
	AdminAddr string

	cmd  *exec.Cmd
	out  *LockedBuffer
	done chan struct{} // closed when the process has exited
	conn *grpc.ClientConn
	tls  *tls.Config // Options.TLS
}

// Start runs `serve --config FILE --grpc-addr 127.0.0.1:0 --http-addr off
// --admin-addr 127.0.0.1:0` (then Options.Args), reads the addresses the
// process bound from its "listening" log line (README.md "Operating it":
// serve logs it at info once every listener is bound) and returns once
// grpc.health.v1 reports SERVING for "". It fails, with the process's
// output, if the process exits first or the deadline passes.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s, err := spawn(opts)
	if err != nil {
		return nil, err
	}
	if err := s.waitServing(ctx, opts.startTimeout()); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// RunToExit runs the binary as Start would and waits for it to exit by
// itself, for startup cases: it returns the exit code and the combined
// stdout and stderr. A process that reaches SERVING, or outlives the
// deadline, is stopped and reported as an error.
func RunToExit(ctx context.Context, opts Options) (int, string, error) {
	s, err := spawn(opts)
	if err != nil {
		return 0, "", err
	}
	err = s.waitServing(ctx, opts.startTimeout())
	if err == nil {
		s.Kill()
		return 0, s.Output(), errors.New("the process started serving instead of exiting")
	}
	var exited *exitedError
	if errors.As(err, &exited) {
		return exited.code, s.Output(), nil
	}
	s.Kill()
	return 0, s.Output(), err
}

func (o Options) startTimeout() time.Duration {
	if o.StartTimeout > 0 {
		return o.StartTimeout
	}
	return DefaultStartTimeout
}

func spawn(opts Options) (*Server, error) {
	args := []string{"serve"}
	if opts.ConfigPath != "" {
		args = append(args, "--config", opts.ConfigPath)
	}
	args = append(args, "--grpc-addr", "127.0.0.1:0", "--http-addr", "off", "--admin-addr", "127.0.0.1:0")
	args = append(args, opts.Args...)
	cmd := exec.Command(opts.Binary, args...)
	cmd.Env = quickExit(Environ(os.Environ(), opts.Env))
	out := &LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", opts.Binary, err)
	}
	s := &Server{cmd: cmd, out: out, done: make(chan struct{}), tls: opts.TLS}
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(s.done)
	}()
	return s, nil
}

// quickExit adds GORACE=atexit_sleep_ms=0 unless GORACE is set: a -race
// build of the service otherwise sleeps a second before every successful
// exit, and a run starts dozens of processes.
func quickExit(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "GORACE=") {
			return env
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}

// Environ is base without ClearedEnv, plus extra.
func Environ(base []string, extra map[string]string) []string {
	cleared := ClearedEnv()
	var env []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, c := range cleared {
			if name == c {
				drop = true
			}
		}
		if _, overridden := extra[name]; overridden {
			drop = true
		}
		if !drop {
			env = append(env, kv)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// FreeAddrs returns n distinct free 127.0.0.1 ports, for a test that must
// write an address before the process starts (an address in a configuration
// file whose precedence it checks). They are free when chosen; another
// process may take one before it is bound. Start never uses them: it binds
// port 0 and reads the addresses back (ListeningAddrs).
func FreeAddrs(n int) ([]string, error) {
	var addrs []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

type exitedError struct {
	code  int
	state string
}

func (e *exitedError) Error() string { return "the process exited: " + e.state }

// Dial opens a plaintext client connection to addr that reconnects
// quickly, for a server that is still starting.
func Dial(addr string) (*grpc.ClientConn, error) { return DialTLS(addr, nil) }

// DialTLS is Dial over TLS with the client configuration c (nil:
// plaintext). Each handshake uses a clone of c.
func DialTLS(addr string, c *tls.Config) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if c != nil {
		creds = credentials.NewTLS(c)
	}
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, Jitter: 0.1, MaxDelay: 250 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
}

// Addrs are the addresses of a "listening" log line.
type Addrs struct {
	GRPC  string `json:"grpc_addr"`
	HTTP  string `json:"http_addr"`
	Admin string `json:"admin_addr"`
}

// ListeningAddrs finds serve's "listening" log line (JSON, message
// "listening", fields grpc_addr, http_addr and admin_addr: the addresses it
// bound, http_addr "off" when that listener is off) in a process's output.
// ok is false until the line is there.
func ListeningAddrs(output string) (addrs Addrs, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			Addrs
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.GRPC != "" && line.Admin != "" {
			return line.Addrs, true
		}
	}
	return Addrs{}, false
}

// errExited ends the wait for the listening line when the process is gone.
var errExited = errors.New("the process exited")

// waitListening polls the output for the listening line until it is there,
// the process exits (errExited) or ctx ends.
func (s *Server) waitListening(ctx context.Context) error {
	return poll.Until(ctx, 0, func() (bool, error) {
		if a, ok := ListeningAddrs(s.Output()); ok {
			s.GRPCAddr, s.HTTPAddr, s.AdminAddr = a.GRPC, a.HTTP, a.Admin
			return true, nil
		}
		if s.Exited() {
			return true, errExited
		}
		return false, errors.New(`no "listening" log line yet`)
	})
}

func (s *Server) waitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.waitListening(ctx); err != nil {
		if errors.Is(err, errExited) {
			return s.exited()
		}
		return fmt.Errorf("waiting for the listening log line: %w\n%s", err, s.Tail(40))
	}
	conn, err := DialTLS(s.GRPCAddr, s.tls)
	if err != nil {
		return err
	}
	result := make(chan error, 1)
	go func() { result <- WaitServing(ctx, conn) }()
	select {
	case err := <-result:
		if err != nil {
			_ = conn.Close()
			return fmt.Errorf("waiting for SERVING on %s: %w\n%s", s.GRPCAddr, err, s.Tail(40))
		}
		s.conn = conn
		return nil
	case <-s.done:
		cancel()
		<-result //nolint:errcheck // WaitServing ends with ctx; the exit below is the error that matters
		_ = conn.Close()
		return s.exited()
	}
}

// exited describes the ended process, once done is closed.
func (s *Server) exited() error {
	<-s.done
	state := s.cmd.ProcessState
	return &exitedError{code: state.ExitCode(), state: state.String() + "\n" + s.Tail(40)}
}

// WaitServing blocks until grpc.health.v1 reports SERVING for the service
// "" on conn, or ctx ends. It watches (Watch, re-opened after a broken
// stream) and falls back to polling Check when Watch is not implemented.
func WaitServing(ctx context.Context, conn *grpc.ClientConn) error {
	hc := healthpb.NewHealthClient(conn)
	watch := true
	return poll.Until(ctx, 0, func() (bool, error) {
		if watch {
			serving, err := watchServing(ctx, hc)
			if status.Code(err) == codes.Unimplemented {
				watch = false
			}
			return serving, err // err is nil when serving
		}
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return true, nil
		}
		return false, fmt.Errorf("health Check = %v, %v", resp.GetStatus(), err)
	})
}

// watchServing reads one Watch stream until SERVING (true) or its end.
func watchServing(ctx context.Context, hc healthpb.HealthClient) (bool, error) {
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		resp, err := stream.Recv()
		if err != nil {
			return false, fmt.Errorf("health Watch (last status %v): %w", last, err)
		}
		last = resp.GetStatus()
		if last == healthpb.HealthCheckResponse_SERVING {
			return true, nil
		}
	}
}

// Conn is the client connection Start dialed and saw SERVING on.
func (s *Server) Conn() *grpc.ClientConn { return s.conn }

// Check sends one CheckRequest on Conn.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return authv3.NewAuthorizationClient(s.conn).Check(ctx, req)
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Signal sends sig to the process (and only to it).
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits for the process to exit, returning its exit
// code; it kills the process and fails if it has not exited within timeout.
func (s *Server) Stop(timeout time.Duration) (int, error) {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if !s.Exited() {
		if err := s.Signal(syscall.SIGTERM); err != nil && !s.Exited() {
			return 0, fmt.Errorf("SIGTERM: %w", err)
		}
	}
	return s.Wait(timeout)
}

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 when a signal ended it); past the timeout it kills the process.
func (s *Server) Wait(timeout time.Duration) (int, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.Kill()
		return 0, fmt.Errorf("still running %v after SIGTERM; killed\n%s", timeout, s.Tail(40))
	}
	st := s.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, fmt.Errorf("ended by signal %v\n%s", ws.Signal(), s.Tail(40))
	}
	return st.ExitCode(), nil
}

// Kill ends the process at once and waits for it; safe to call twice.
func (s *Server) Kill() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if !s.Exited() {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
}

// Output is everything the process wrote to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

// Tail is the last n lines of Output, for failure messages.
func (s *Server) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.Output(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return "process output:\n\t" + strings.Join(lines, "\n\t")
}

// LockedBuffer collects a process's output from two pipes at once, up to
// maxOutput bytes; safe for concurrent Write and String.
type LockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	dropped int
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if room := max(maxOutput-l.b.Len(), 0); room < len(p) {
		l.dropped += len(p) - room
		p = p[:room]
	}
	l.b.Write(p)
	return n, nil // dropped bytes count as written: the process must never block on its output
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped > 0 {
		return l.b.String() + fmt.Sprintf("\n[... %d bytes dropped]", l.dropped)
	}
	return l.b.String()
}
