// Package pgtest runs a real, throwaway PostgreSQL server for tests: Debian's
// `postgresql` package binaries (installed by .ci/install-test-deps.sh), a fresh cluster
// made by initdb in t.TempDir(), listening on a free loopback port, run as an
// unprivileged user when the tests run as root (PostgreSQL refuses to run as root), and
// stopped when the test ends.
//
// It never skips: a missing binary or a server that does not start is a t.Fatal that
// says what to install or what the server logged. It never uses a fixed port or sleeps
// without a deadline, and it leaves nothing behind (the cluster lives in t.TempDir()).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SuperUser is the cluster's superuser; its password is [Server.Password].
const SuperUser = "postgres"

// Database is the database every cluster has.
const Database = "postgres"

// startTimeout bounds initdb and each server start.
const startTimeout = 90 * time.Second

// Server is one running (or stopped) PostgreSQL cluster.
type Server struct {
	// Port is the loopback TCP port; it stays the same across Stop and Start.
	Port int
	// Password is the superuser's password (scram-sha-256 over TCP).
	Password string

	bin     string // directory of postgres and initdb
	dir     string // the test's temporary directory
	data    string
	logPath string
	cred    *syscall.Credential
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start makes a cluster and starts it; it is stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s := &Server{bin: bin, dir: t.TempDir(), Password: "pgtest-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	s.data = filepath.Join(s.dir, "data")
	s.logPath = filepath.Join(s.dir, "postgres.log")
	if err := s.prepare(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.initdb(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("pgtest: stopping PostgreSQL: %v", err)
		}
	})
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("pgtest: no free loopback port: %v", err)
		}
		s.Port = port
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		if !errors.Is(lastErr, errPortTaken) {
			break
		}
	}
	t.Fatalf("pgtest: %v", lastErr)
	return nil
}

// URL is a connection URL for user with password to db on this server, TLS off.
func (s *Server) URL(userName, password, db string) string {
	u := url.URL{
		Scheme:   "postgresql",
		User:     url.UserPassword(userName, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SuperURL is the superuser's URL to the default database.
func (s *Server) SuperURL() string { return s.URL(SuperUser, s.Password, Database) }

// Exec runs each statement as the superuser in the default database.
func (s *Server) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.SuperURL())
	if err != nil {
		t.Fatalf("pgtest: connecting as %s: %v", SuperUser, err)
	}
	defer conn.Close(context.Background())
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: %s: %v", q, err)
		}
	}
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and waits for it.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("pgtest: stopping PostgreSQL: %v", err)
	}
}

// Restart starts a stopped server again on the same port with the same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.cmd != nil {
		t.Fatal("pgtest: Restart of a running server")
	}
	if err := s.start(); err != nil {
		t.Fatalf("pgtest: restarting PostgreSQL on port %d: %v", s.Port, err)
	}
}

// findBin finds Debian's PostgreSQL binaries, the newest version first.
func findBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, m := range matches {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "initdb")); err == nil {
			return filepath.Dir(m), nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH): " +
		"install Debian's 'postgresql' package (run .ci/install-test-deps.sh, or apt-get install postgresql)")
}

func versionOf(path string) int {
	// /usr/lib/postgresql/<n>/bin/postgres
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// prepare makes the directories and, as root, picks the unprivileged user that will own
// and run the cluster and lets it reach the temporary directory.
func (s *Server) prepare() error {
	if os.Geteuid() == 0 {
		var u *user.User
		var err error
		for _, name := range []string{"postgres", "nobody"} {
			if u, err = user.Lookup(name); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("running as root and neither the 'postgres' nor the 'nobody' user exists: %w", err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("user %s has a non-numeric uid or gid", u.Username)
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		// t.TempDir() and its parent are 0700 root: let the server's user traverse them.
		for _, d := range []string{filepath.Dir(s.dir), s.dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				return err
			}
		}
	}
	if err := os.Mkdir(s.data, 0o700); err != nil {
		return err
	}
	return s.own(s.data)
}

func (s *Server) own(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (s *Server) initdb() error {
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := s.own(pwfile); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := s.command(ctx, "initdb", "-D", s.data, "-U", SuperUser, "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb failed: %v\n%s", err, out)
	}
	return nil
}

var errPortTaken = errors.New("port taken")

// start runs the server and waits until it accepts connections.
func (s *Server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	start, _ := logf.Seek(0, 2)
	cmd := s.command(context.Background(), "postgres", "-D", s.data, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=60", "-c", "shared_buffers=16MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.SuperURL())
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			logText := s.logSince(start)
			if strings.Contains(logText, "could not bind") || strings.Contains(logText, "Address already in use") {
				return fmt.Errorf("%w: %d", errPortTaken, s.Port)
			}
			return fmt.Errorf("PostgreSQL exited during start-up (%v); its log:\n%s", cmd.ProcessState, logText)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return fmt.Errorf("PostgreSQL did not accept connections within %v (last error: %v); its log:\n%s",
				startTimeout, err, s.logSince(start))
		}
	}
}

func (s *Server) logSince(off int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

// stop sends SIGINT (fast shutdown) and waits; SIGKILL after a deadline.
func (s *Server) stop() error {
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("PostgreSQL did not shut down within 30s; killed")
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
