package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is the release version, set at link time by `make build`:
//
//	go build -ldflags "-X main.version=$(git describe --always --dirty)"
//
// Empty when the binary was built otherwise; buildVersion then falls back
// on the module version the Go toolchain recorded ("devel" when none).
var version string

// MetricBuildInfo is the constant gauge naming the running build.
const MetricBuildInfo = "agentos_authz_build_info"

// build names the running binary: its version, the VCS revision it was
// built from and the Go toolchain that built it.
type build struct {
	Version   string
	Revision  string // "unknown" without VCS information (go build -buildvcs=false, not a checkout)
	GoVersion string
}

// readBuild reads the running binary's build information.
func readBuild() build {
	return buildFrom(version, debug.ReadBuildInfo)
}

// buildFrom derives the build from the linked version (ldVersion) and the
// toolchain's build information (read), each allowed to be missing.
func buildFrom(ldVersion string, read func() (*debug.BuildInfo, bool)) build {
	b := build{Version: ldVersion, Revision: "unknown", GoVersion: "unknown"}
	info, ok := read()
	if ok && info != nil {
		if info.GoVersion != "" {
			b.GoVersion = info.GoVersion
		}
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if s.Value != "" {
					b.Revision = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && b.Revision != "unknown" {
			b.Revision += "-dirty"
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// runVersion prints the build: `agentos-authz version` and `--version`.
func runVersion(_ context.Context, args []string, s sys) int {
	fset := newFlagSet("version", "", "Prints the version, the VCS revision and the Go version of this binary.", s.stderr)
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	printVersion(s.stdout, readBuild())
	return exitOK
}

func printVersion(w io.Writer, b build) {
	fmt.Fprintf(w, "agentos-authz %s\nrevision: %s\ngo:       %s\n", b.Version, b.Revision, b.GoVersion)
}

// buildInfoGauge is agentos_authz_build_info{version,revision,goversion} 1,
// the usual Prometheus way of exporting a build (join on it to label other
// series with the version).
func buildInfoGauge(b build) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricBuildInfo,
		Help: "The running build: version, VCS revision and Go version, as labels; the value is always 1.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	return g
}
