package conformance

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateManifest = flag.Bool("update-manifest", false, "rewrite "+ManifestPath+" from the vendored files")

// TestVendored holds the vendored copies (docs/README.md) to the manifest
// always, and to the shared originals whenever a shared directory sits beside
// the repository: every source file copied with the same bytes, no copied file
// without a source.
func TestVendored(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if *updateManifest {
		if err := WriteManifest(root); err != nil {
			t.Fatal(err)
		}
	}
	files, err := VendoredFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	// The conformance README, its keys, its vectors and the Envoy fixtures:
	// a listing much shorter than this has lost a tree.
	if len(files) < 50 {
		t.Errorf("%d vendored files, want the whole set (over 50): %q", len(files), files)
	}
	problems, err := CheckManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s (after copying the shared material again, run go test ./internal/conformance -run TestVendored -update-manifest)", p)
	}

	shared, ok, err := SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Logf("no shared directory beside %s: the copies were checked against %s only", root, ManifestPath)
		return
	}
	problems, err = CheckShared(root, shared)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d vendored files equal to %s", len(files), shared)
}

// writeTree writes files (path relative to dir → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckSharedAndManifestCatch: the checks find every kind of drift in a
// made-up repository and shared directory.
func TestCheckSharedAndManifestCatch(t *testing.T) {
	base := t.TempDir()
	root, shared := filepath.Join(base, "repo"), filepath.Join(base, "shared")
	contract := "# contract\nRoute table: the AgentOS defaults " + contractSharedText + " plus\n"
	writeTree(t, shared, map[string]string{
		"CONTRACT.md":                   contract,
		"agentos-routes.tsv":            "GET\t/a\ta:read\n",
		"conformance/README.md":         "readme\n",
		"conformance/vectors/a.json":    "[]\n",
		"conformance/vectors/b.json":    "[]\n",
		"conformance/keys/hs.secret":    "s\n",
		"envoy-fixtures/grpc-call.json": "{}\n",
	})
	writeTree(t, root, map[string]string{
		"go.mod":                                   "module " + ModulePath + "\n",
		"docs/CONTRACT.md":                         strings.Replace(contract, contractSharedText, contractCopyText, 1),
		"scopes/agentos-routes.tsv":                "GET\t/a\ta:read\n",
		"test/testdata/conformance/README.md":      "readme\n",
		"test/testdata/conformance/vectors/a.json": "[]\n",
		"test/testdata/conformance/vectors/b.json": "[]\n",
		"test/testdata/conformance/keys/hs.secret": "s\n",
		"proto/envoy-fixtures/grpc-call.json":      "{}\n",
	})
	if p, err := CheckShared(root, shared); err != nil || len(p) != 0 {
		t.Fatalf("CheckShared on equal trees = %q, %v", p, err)
	}
	if err := WriteManifest(root); err != nil {
		t.Fatal(err)
	}
	if p, err := CheckManifest(root); err != nil || len(p) != 0 {
		t.Fatalf("CheckManifest after WriteManifest = %q, %v", p, err)
	}

	// Drift: a changed vector, a missing copy, an extra copy, a contract
	// edited beyond its one allowed difference.
	writeTree(t, root, map[string]string{
		"test/testdata/conformance/vectors/a.json": "[1]\n",
		"test/testdata/conformance/vectors/c.json": "[]\n",
		"docs/CONTRACT.md":                         strings.Replace(contract, contractSharedText, contractCopyText, 1) + "extra\n",
	})
	if err := os.Remove(filepath.Join(root, "test/testdata/conformance/vectors/b.json")); err != nil {
		t.Fatal(err)
	}
	p, err := CheckShared(root, shared)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(p, "\n")
	for _, want := range []string{
		"docs/CONTRACT.md differs",
		"test/testdata/conformance/vectors/a.json differs",
		"test/testdata/conformance/vectors/b.json is missing",
		"test/testdata/conformance/vectors/c.json has no source",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CheckShared problems:\n%s\nwant one containing %q", got, want)
		}
	}
	p, err = CheckManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	got = strings.Join(p, "\n")
	for _, want := range []string{
		"docs/CONTRACT.md has SHA-256",
		"test/testdata/conformance/vectors/a.json has SHA-256",
		"lists test/testdata/conformance/vectors/b.json, which is not there",
		"test/testdata/conformance/vectors/c.json is not in",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CheckManifest problems:\n%s\nwant one containing %q", got, want)
		}
	}
}

func TestNormalizeContract(t *testing.T) {
	one := "a " + contractCopyText + " b\n"
	if got, err := NormalizeContract([]byte(one)); err != nil || string(got) != "a "+contractSharedText+" b\n" {
		t.Errorf("NormalizeContract(%q) = %q, %v", one, got, err)
	}
	for _, bad := range []string{
		"no reference\n",
		contractCopyText + contractCopyText,
		contractCopyText + contractSharedText,
	} {
		if got, err := NormalizeContract([]byte(bad)); err == nil {
			t.Errorf("NormalizeContract(%q) = %q, want an error", bad, got)
		}
	}
}

// TestRootFrom: a nested module's go.mod is passed over; no root is an error.
func TestRootFrom(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, map[string]string{
		"repo/go.mod":              "// the root\nmodule " + ModulePath + "\n\ngo 1.26.0\n",
		"repo/envoy/deploy/go.mod": "module " + ModulePath + "/envoy/deploy\n",
		"repo/envoy/deploy/x/keep": "",
		"other/go.mod":             "module example.com/other\n",
	})
	want := filepath.Join(base, "repo")
	for _, dir := range []string{"repo", "repo/envoy/deploy", "repo/envoy/deploy/x"} {
		if got, err := rootFrom(filepath.Join(base, dir)); err != nil || got != want {
			t.Errorf("rootFrom(%s) = %q, %v; want %q", dir, got, err, want)
		}
	}
	if got, err := rootFrom(filepath.Join(base, "other")); err == nil {
		t.Errorf("rootFrom(other) = %q, want an error", got)
	}
}

// TestDir: the vendored copy by default; the variable overrides it; a
// directory without vectors/ and keys/ is an error.
func TestDir(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(DirEnv, "")
	if got, err := Dir(); err != nil || got != filepath.Join(root, VendoredDir) {
		t.Errorf("Dir() = %q, %v; want the vendored copy", got, err)
	}
	other := t.TempDir()
	t.Setenv(DirEnv, other)
	if got, err := Dir(); err == nil {
		t.Errorf("Dir() with an empty %s = %q, want an error", DirEnv, got)
	}
	writeTree(t, other, map[string]string{"vectors/a.json": "[]", "keys/hs.secret": "s"})
	if got, err := Dir(); err != nil || got != other {
		t.Errorf("Dir() = %q, %v; want %q", got, err, other)
	}
}
