package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/internal/filetest"
)

// TestConfigFileNotRegular: --config (or AUTHZ_CONFIG) naming a FIFO, a
// device or a directory is a prompt configuration error naming the path,
// from every command that reads it (README.md, security table).
func TestConfigFileNotRegular(t *testing.T) {
	fifo := filetest.FIFO(t)
	dir := t.TempDir()
	paths := []struct{ what, path string }{{"FIFO", fifo}, {"device", "/dev/zero"}, {"directory", dir}}
	commands := [][]string{
		{"validate"},
		{"routes"},
		{"check", "--method", "GET", "--path", "/health"},
		{"serve", "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--http-addr", "off"},
	}
	for _, p := range paths {
		for _, cmd := range commands {
			args := append(append([]string{}, cmd...), "--config", p.path)
			t.Run(p.what+" "+cmd[0], func(t *testing.T) {
				h := newHarness(t)
				code := filetest.Prompt(t, call(args), func() int { return h.run(args...) })
				if code != exitUsage {
					t.Errorf("%s = exit %d, want %d\nstderr: %s", call(args), code, exitUsage, h.stderr)
				}
				for _, w := range []string{"config: ", p.path, "not a regular file"} {
					if !strings.Contains(h.stderr.String(), w) {
						t.Errorf("%s stderr = %q, want it to hold %q", call(args), h.stderr, w)
					}
				}
			})
		}
	}
	t.Run("AUTHZ_CONFIG FIFO", func(t *testing.T) {
		h := newHarness(t)
		h.env["AUTHZ_CONFIG"] = fifo
		code := filetest.Prompt(t, "validate with AUTHZ_CONFIG", func() int { return h.run("validate") })
		if code != exitUsage || !strings.Contains(h.stderr.String(), fifo+": not a regular file") {
			t.Errorf("AUTHZ_CONFIG=%s agentos-authz validate = exit %d, stderr %q; want %d naming the FIFO", fifo, code, h.stderr, exitUsage)
		}
	})
}

// TestDigestNonRegular: the live-reload digest never opens a FIFO (it would
// block the watcher for ever) nor reads a device: such a file hashes as its
// error, and a regular file swapped for one is a change.
func TestDigestNonRegular(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(regular, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The watched path is a symlink, as in a Kubernetes Secret volume.
	watched := filepath.Join(dir, "watched")
	if err := os.Symlink(regular, watched); err != nil {
		t.Fatal(err)
	}
	files := []string{watched, "/dev/zero"}
	before := filetest.Prompt(t, "digest", func() [32]byte { return digest(files) })
	fifo := filetest.FIFO(t)
	if err := os.Remove(watched); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fifo, watched); err != nil {
		t.Fatal(err)
	}
	after := filetest.Prompt(t, "digest", func() [32]byte { return digest(files) })
	if after == before {
		t.Errorf("digest of %s unchanged after it became a FIFO", watched)
	}
	if again := filetest.Prompt(t, "digest", func() [32]byte { return digest(files) }); again != after {
		t.Errorf("digest of a FIFO changed between two calls: it must hash as its (stable) error")
	}
}
