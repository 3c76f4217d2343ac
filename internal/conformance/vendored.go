package conformance

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Copy is one piece of the AgentOS shared material vendored into the
// repository: Source relative to SharedDir, Path relative to Root; Tree
// marks a directory copied whole.
type Copy struct {
	Source string
	Path   string
	Tree   bool
}

// Copies is every vendored piece (docs/README.md).
var Copies = []Copy{
	{Source: "CONTRACT.md", Path: "docs/CONTRACT.md"},
	{Source: "agentos-routes.tsv", Path: "scopes/agentos-routes.tsv"},
	{Source: "conformance", Path: VendoredDir, Tree: true},
	{Source: "envoy-fixtures", Path: "proto/envoy-fixtures", Tree: true},
}

// ManifestPath is the manifest of every vendored file, relative to Root, in
// sha256sum's format ("HEX  PATH", PATH relative to Root), so that
// `sha256sum -c test/testdata/SHA256SUMS` from the root checks it too.
const ManifestPath = "test/testdata/SHA256SUMS"

// The one allowed difference between the shared contract and
// docs/CONTRACT.md: the route table the shared copy finds beside itself is
// scopes/agentos-routes.tsv here.
const (
	contractSharedText = "(`agentos-routes.tsv` beside this file)"
	contractCopyText   = "(`scopes/agentos-routes.tsv` in this repository)"
)

// NormalizeContract turns docs/CONTRACT.md back into the shared text: it
// replaces the repository's reference to scopes/agentos-routes.tsv with the
// shared one. The reference must appear exactly once and the shared wording
// not at all; anything else is an error, so no other edit can hide here.
func NormalizeContract(b []byte) ([]byte, error) {
	if n := bytes.Count(b, []byte(contractCopyText)); n != 1 {
		return nil, fmt.Errorf("docs/CONTRACT.md holds %q %d times, want once", contractCopyText, n)
	}
	if bytes.Contains(b, []byte(contractSharedText)) {
		return nil, fmt.Errorf("docs/CONTRACT.md holds the shared wording %q: the route table is scopes/agentos-routes.tsv here", contractSharedText)
	}
	return bytes.Replace(b, []byte(contractCopyText), []byte(contractSharedText), 1), nil
}

// VendoredFiles lists every vendored file, relative to root and with '/'
// separators, sorted.
func VendoredFiles(root string) ([]string, error) {
	var out []string
	for _, c := range Copies {
		if !c.Tree {
			out = append(out, c.Path)
			continue
		}
		files, err := treeFiles(filepath.Join(root, filepath.FromSlash(c.Path)))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			out = append(out, c.Path+"/"+f)
		}
	}
	slices.Sort(out)
	return out, nil
}

// treeFiles lists the regular files under dir, relative to it, '/'
// separated, sorted; any other kind of entry is an error.
func treeFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	slices.Sort(out)
	return out, err
}

// Manifest reads ManifestPath under root: the SHA-256 of each vendored file
// by its root-relative path.
func Manifest(root string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(root, ManifestPath))
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != sha256.Size*2 || path == "" {
			return nil, fmt.Errorf("%s:%d: want \"SHA256  PATH\"", ManifestPath, n)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", ManifestPath, n, err)
		}
		if _, dup := sums[path]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", ManifestPath, n, path)
		}
		sums[path] = sum
	}
	return sums, sc.Err()
}

// CheckManifest compares the vendored files under root with the manifest:
// every vendored file listed with its hash, every listed file present. It
// returns one line per problem.
func CheckManifest(root string) ([]string, error) {
	sums, err := Manifest(root)
	if err != nil {
		return nil, err
	}
	files, err := VendoredFiles(root)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, f := range files {
		want, ok := sums[f]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not in %s", f, ManifestPath))
			continue
		}
		delete(sums, f)
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		if got := Sum(b); got != want {
			problems = append(problems, fmt.Sprintf("%s has SHA-256 %s, %s says %s", f, got, ManifestPath, want))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(sums)) {
		problems = append(problems, fmt.Sprintf("%s lists %s, which is not there", ManifestPath, f))
	}
	return problems, nil
}

// WriteManifest writes ManifestPath under root from the vendored files as
// they are (the refresh step after copying them again: docs/README.md).
func WriteManifest(root string) error {
	files, err := VendoredFiles(root)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", Sum(data), f)
	}
	return os.WriteFile(filepath.Join(root, ManifestPath), b.Bytes(), 0o644)
}

// Sum is the hex SHA-256 of b.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// CheckShared compares every vendored copy under root with its source under
// shared: each source file must have a copy with the same bytes (for
// docs/CONTRACT.md, after NormalizeContract) and a vendored tree must hold no
// file its source lacks. It returns one line per problem.
func CheckShared(root, shared string) ([]string, error) {
	var problems []string
	for _, c := range Copies {
		if !c.Tree {
			p, err := compareFile(filepath.Join(shared, c.Source), filepath.Join(root, filepath.FromSlash(c.Path)), c.Path)
			if err != nil {
				return nil, err
			}
			problems = append(problems, p...)
			continue
		}
		src, err := treeFiles(filepath.Join(shared, c.Source))
		if err != nil {
			return nil, err
		}
		dst, err := treeFiles(filepath.Join(root, filepath.FromSlash(c.Path)))
		if err != nil {
			return nil, err
		}
		for _, f := range dst {
			if !slices.Contains(src, f) {
				problems = append(problems, fmt.Sprintf("%s/%s has no source %s/%s", c.Path, f, c.Source, f))
			}
		}
		for _, f := range src {
			p, err := compareFile(filepath.Join(shared, c.Source, filepath.FromSlash(f)), filepath.Join(root, filepath.FromSlash(c.Path), filepath.FromSlash(f)), c.Path+"/"+f)
			if err != nil {
				return nil, err
			}
			problems = append(problems, p...)
		}
	}
	return problems, nil
}

func compareFile(src, dst, name string) ([]string, error) {
	want, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	got, err := os.ReadFile(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{fmt.Sprintf("%s is missing: copy %s", name, src)}, nil
	}
	if err != nil {
		return nil, err
	}
	if name == "docs/CONTRACT.md" {
		if got, err = NormalizeContract(got); err != nil {
			return []string{err.Error()}, nil
		}
	}
	if !bytes.Equal(got, want) {
		return []string{fmt.Sprintf("%s differs from %s: copy it again", name, src)}, nil
	}
	return nil, nil
}
