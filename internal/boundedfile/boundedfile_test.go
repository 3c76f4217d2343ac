package boundedfile_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
	"github.com/agentos-authz/agentos-authz/internal/filetest"
)

func TestRead(t *testing.T) {
	const limit = 16
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	regular := write("regular", []byte("key material"))
	exact := write("exact", bytes.Repeat([]byte("x"), limit))
	big := write("big", bytes.Repeat([]byte("x"), limit+1))
	// A Kubernetes Secret volume: the key is a symlink to a regular file.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filetest.FIFO(t)
	fifoLink := filepath.Join(dir, "fifo-link")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name    string
		path    string
		want    string // content, when wantIs is nil
		wantIs  error
		wantMsg string // in the error, beside the path
	}{
		{name: "regular file", path: regular, want: "key material"},
		{name: "exactly the limit", path: exact, want: strings.Repeat("x", limit)},
		{name: "symlink to a regular file", path: link, want: "key material"},
		{name: "directory", path: dir, wantIs: boundedfile.ErrNotRegular, wantMsg: "not a regular file (a device, FIFO, socket or directory)"},
		{name: "FIFO", path: fifo, wantIs: boundedfile.ErrNotRegular, wantMsg: "not a regular file"},
		{name: "symlink to a FIFO", path: fifoLink, wantIs: boundedfile.ErrNotRegular, wantMsg: "not a regular file"},
		{name: "device /dev/zero", path: "/dev/zero", wantIs: boundedfile.ErrNotRegular, wantMsg: "not a regular file"},
		{name: "over the limit", path: big, wantIs: boundedfile.ErrTooLarge, wantMsg: "larger than 16 bytes"},
		{name: "missing", path: missing, wantIs: fs.ErrNotExist, wantMsg: "open " + missing + ": no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				b   []byte
				err error
			}
			r := filetest.Prompt(t, "Read("+tt.path+")", func() result {
				b, err := boundedfile.Read(tt.path, limit)
				return result{b, err}
			})
			if tt.wantIs == nil {
				if r.err != nil || string(r.b) != tt.want {
					t.Fatalf("Read(%s) = %q, %v; want %q, nil", tt.path, r.b, r.err, tt.want)
				}
				return
			}
			if r.err == nil {
				t.Fatalf("Read(%s) = %q, nil; want an error matching %v", tt.path, r.b, tt.wantIs)
			}
			msg := r.err.Error()
			if !errors.Is(r.err, tt.wantIs) || !strings.Contains(msg, tt.path) || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("Read(%s) error = %q; want one matching %v, naming the path and saying %q", tt.path, msg, tt.wantIs, tt.wantMsg)
			}
			var pe *fs.PathError
			if !errors.As(r.err, &pe) || pe.Path != tt.path {
				t.Fatalf("Read(%s) error = %#v; want an *fs.PathError for the path", tt.path, r.err)
			}
		})
	}
}
