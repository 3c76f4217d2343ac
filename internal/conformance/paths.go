package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is the root module's path, read from the go.mod that marks the
// repository root.
const ModulePath = "github.com/agentos-authz/agentos-authz"

// VendoredDir is the vendored conformance material, relative to the
// repository root.
const VendoredDir = "test/testdata/conformance"

// DirEnv names the variable that points the tests at another conformance
// directory (one with vectors/ and keys/), e.g. a working copy of the shared
// set; unset, Dir is the vendored copy.
const DirEnv = "AGENTOS_CONFORMANCE_DIR"

// Root is the repository root: the nearest directory, from the working
// directory up, whose go.mod declares ModulePath. A nested module's go.mod
// (envoy/deploy) is passed over, so Root is the same from every package
// directory of every module of the repository.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return rootFrom(wd)
}

func rootFrom(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		mod, err := modulePath(filepath.Join(d, "go.mod"))
		switch {
		case err == nil && mod == ModulePath:
			return d, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod declaring module %s in %s or any parent", ModulePath, dir)
		}
		d = parent
	}
}

// modulePath reads the module directive of a go.mod file.
func modulePath(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("%s: no module directive", gomod)
}

// Dir is the conformance directory the tests run: $AGENTOS_CONFORMANCE_DIR
// when set, else the vendored copy under the repository root. It must hold
// vectors/ and keys/; anything else is an error, never a reason to skip.
func Dir() (string, error) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		root, err := Root()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, VendoredDir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, sub := range []string{"vectors", "keys"} {
		if fi, err := os.Stat(filepath.Join(abs, sub)); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("conformance material not found: %s/%s is not a directory (the vendored copy is %s; %s overrides it)", abs, sub, VendoredDir, DirEnv)
		}
	}
	return abs, nil
}

// SharedDir is the AgentOS shared material (CONTRACT.md, conformance/,
// envoy-fixtures/, agentos-routes.tsv) when a directory named shared sits
// beside the repository root, as in the workspace the vendored copies come
// from; ok is false when there is none. The drift tests compare every
// vendored copy with it whenever it is there.
func SharedDir() (dir string, ok bool, err error) {
	root, err := Root()
	if err != nil {
		return "", false, err
	}
	dir = filepath.Join(filepath.Dir(root), "shared")
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", false, nil
	case err != nil:
		return "", false, err
	case !fi.IsDir():
		return "", false, fmt.Errorf("%s is not a directory", dir)
	}
	return dir, true, nil
}

// Load reads the vector files of Dir()/vectors, then those of
// Dir()/vectors-next (the rules the contract added last), the project's own
// vectors (test/testdata/project-vectors), and the keys of Dir()/keys.
func Load() (dir string, files []File, keys *Keys, err error) {
	dir, err = Dir()
	if err != nil {
		return "", nil, nil, err
	}
	files, err = LoadDir(filepath.Join(dir, "vectors"))
	if err != nil {
		return "", nil, nil, err
	}
	next, err := LoadDir(filepath.Join(dir, "vectors-next"))
	if err != nil {
		return "", nil, nil, err
	}
	files = append(files, next...)
	// The project's own vectors, for rules the shared set does not cover
	// (same schema; not vendored, so not in the drift checks).
	root, err := Root()
	if err != nil {
		return "", nil, nil, err
	}
	own, err := LoadDir(filepath.Join(root, "test", "testdata", "project-vectors"))
	if err != nil {
		return "", nil, nil, err
	}
	files = append(files, own...)
	keys, err = LoadKeys(filepath.Join(dir, "keys"))
	if err != nil {
		return "", nil, nil, err
	}
	return dir, files, keys, nil
}
