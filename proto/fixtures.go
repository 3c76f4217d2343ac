// Package proto holds the project's protocol data: the Envoy CheckRequest
// fixtures in envoy-fixtures/, verbatim copies of the shared set. It carries
// data only; the Envoy types come from go-control-plane, and package
// proto/envoyfixtures parses these files into them.
//
// The embedding lives here, beside the files, because go:embed cannot reach
// a parent directory: proto/envoyfixtures cannot embed ../envoy-fixtures.
package proto

import "embed"

// EnvoyFixturesDir is the directory, inside EnvoyFixtures(), that holds the
// fixture files (<name>.json).
const EnvoyFixturesDir = "envoy-fixtures"

// envoyFixtures is unexported so that nothing can swap the data.
//
//go:embed envoy-fixtures/*.json
var envoyFixtures embed.FS

// EnvoyFixtures returns the embedded Envoy CheckRequest fixtures, one
// protojson file per request under EnvoyFixturesDir. The file system is
// read-only and safe for concurrent use.
func EnvoyFixtures() embed.FS { return envoyFixtures }
