// Package envoyfixtures parses the project's Envoy CheckRequest fixtures
// (proto/envoy-fixtures, embedded by package proto) into go-control-plane
// types, and puts a caller's token where each fixture carries the ${TOKEN}
// placeholder.
//
// It owns the reading of those files and nothing more: it never mints
// tokens, never decides anything about a request and keeps no state; every
// call parses afresh, so each returned request belongs to its caller.
// The fixtures are parsed strictly (unknown fields are errors), as Envoy's
// own types would be.
package envoyfixtures

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/agentos-authz/agentos-authz/proto"
)

// Placeholder is the literal that stands for the caller's token in the
// fixtures' authorization header and access_token cookie.
const Placeholder = "${TOKEN}"

const ext = ".json"

// Names returns the names of the embedded fixtures (file names without
// ".json"), sorted.
func Names() []string {
	entries, err := fs.ReadDir(proto.EnvoyFixtures(), proto.EnvoyFixturesDir)
	if err != nil {
		// The directory is embedded at build time; it cannot be missing.
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ext); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Raw returns the embedded protojson text of the fixture called name
// ("http1-get-query"; a trailing ".json" is accepted).
func Raw(name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ext)
	if name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("envoyfixtures: invalid fixture name %q", name)
	}
	b, err := fs.ReadFile(proto.EnvoyFixtures(), path.Join(proto.EnvoyFixturesDir, name+ext))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("envoyfixtures: no fixture %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("envoyfixtures: reading fixture %q: %w", name, err)
	}
	return b, nil
}

// Load parses the fixture called name ("http1-get-query"; a trailing
// ".json" is accepted) into a new CheckRequest. The ${TOKEN} placeholder is
// left in place; see SetToken.
func Load(name string) (*authv3.CheckRequest, error) {
	b, err := Raw(name)
	if err != nil {
		return nil, err
	}
	req := new(authv3.CheckRequest)
	if err := protojson.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("envoyfixtures: parsing fixture %q: %w", strings.TrimSuffix(name, ext), err)
	}
	return req, nil
}

// All parses every embedded fixture, keyed by name. It fails on the first
// fixture that does not parse, naming it.
func All() (map[string]*authv3.CheckRequest, error) {
	names := Names()
	all := make(map[string]*authv3.CheckRequest, len(names))
	for _, n := range names {
		req, err := Load(n)
		if err != nil {
			return nil, err
		}
		all[n] = req
	}
	return all, nil
}

// SetToken replaces every ${TOKEN} placeholder in req's HTTP headers with
// token: in the headers map (the authorization header, the access_token
// cookie) and, for fixtures sent with encode_raw_headers, in the header_map
// entries' value and raw_value bytes (non-UTF-8 bytes around it are kept
// as they are). It modifies req in place and returns the number of header
// values it changed: 0 means req had no placeholder. A nil req is left
// alone.
func SetToken(req *authv3.CheckRequest, token string) int {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return 0
	}
	changed := 0
	for k, v := range h.GetHeaders() {
		if strings.Contains(v, Placeholder) {
			h.Headers[k] = strings.ReplaceAll(v, Placeholder, token)
			changed++
		}
	}
	placeholder := []byte(Placeholder)
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		touched := false
		if strings.Contains(hv.GetValue(), Placeholder) {
			hv.Value = strings.ReplaceAll(hv.GetValue(), Placeholder, token)
			touched = true
		}
		if bytes.Contains(hv.GetRawValue(), placeholder) {
			hv.RawValue = bytes.ReplaceAll(hv.GetRawValue(), placeholder, []byte(token))
			touched = true
		}
		if touched {
			changed++
		}
	}
	return changed
}
