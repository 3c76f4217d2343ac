// Package boundedfile reads the files a configuration names: only regular
// files, and at most a given number of bytes of them, so that a path to a
// device (/dev/zero), a FIFO, a socket or a directory, or an oversized file,
// is a clear error at once rather than a read that never ends, an open that
// blocks for ever or unbounded memory (README.md, security table: bad input
// gets a clear, specific error, never a hang). It never logs and never puts
// file content in an error: every error names the path only.
package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is the error (inside an *fs.PathError naming the path) for
// a path that, after symlinks, is not a regular file.
var ErrNotRegular = errors.New("not a regular file (a device, FIFO, socket or directory)")

// ErrTooLarge is matched (errors.Is) by the error of Read for a file over
// its limit; the error itself names the limit.
var ErrTooLarge = errors.New("file too large")

// tooLargeError says which limit a file is over.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("larger than %d bytes", e.limit)
}

func (e *tooLargeError) Is(target error) bool { return target == ErrTooLarge }

// Open opens the regular file at path for reading, following symlinks
// (Kubernetes mounts Secret and ConfigMap keys as symlinks to regular
// files). Anything else is refused before it is opened — opening a FIFO
// blocks until a writer comes — and the opened file is checked again, so a
// path swapped for a non-regular file after the first check is refused
// too (only a swap to a FIFO in that instant can still block the open).
// Errors are *fs.PathError with Op "open": os's own (errors.Is(err,
// fs.ErrNotExist) holds for a missing file) or one wrapping ErrNotRegular.
func Open(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		// Worded as os.Open's error ("open PATH: ..."), which is what the
		// callers' messages were written around.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Op = "open"
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err = f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	return f, nil
}

// Read returns the content of the regular file at path (see Open), which
// must hold at most limit bytes: at most limit+1 are read, and a larger file is
// an *fs.PathError matching ErrTooLarge and naming limit.
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &tooLargeError{limit: limit}}
	}
	return b, nil
}
