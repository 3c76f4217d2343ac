// Package conformance is the test-side reading of the conformance vectors
// vendored under test/testdata/conformance (their README.md there is the
// schema): the vector and file types, the strict loader, the grouping by
// configuration, the placeholder substitution (Substituter), the key
// material (Keys) and the token minting (Minter). Every test that runs the
// vectors — the engine's in scopes/, the pipeline's in authz/, the black-box
// suite in test/ — reads them through this package, and Dir finds the
// vendored copy from any package directory of the module.
//
// It is test material, not part of the service: it must never import the
// service's own packages (authz, envoy, scopes, cmd), so everything it knows
// comes from docs/CONTRACT.md and the conformance README, and a bug shared by
// the service and its tests cannot hide behind common code.
package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// File is one vectors/*.json file: a description, the configuration and
// environment its vectors share, and the vectors.
type File struct {
	Name        string // base name without ".json", e.g. "rbac"
	Path        string
	Description string
	Config      json.RawMessage // nil when the file has none (or null)
	Env         map[string]string
	Vectors     []Vector
	// ServiceAccounts are the rows of the @sqlite:NAME databases.
	ServiceAccounts []ServiceAccount
	// Sequential: the vectors are sent one at a time, in order, to a
	// server of the file's own (they may depend on each other).
	Sequential bool
}

// Vector is one black-box case.
type Vector struct {
	Name    string     `json:"name"`
	Source  string     `json:"source"`
	Tags    []string   `json:"tags"`
	Note    string     `json:"note"`
	Token   *TokenSpec `json:"token"`
	Token2  *TokenSpec `json:"token2"`
	Request Request    `json:"request"`
	Expect  Expect     `json:"expect"`

	// Config, Env and ServiceAccounts override the file's when the vector
	// carries them.
	Config          json.RawMessage `json:"config"`
	Env             json.RawMessage `json:"env"`
	ServiceAccounts json.RawMessage `json:"service_accounts"`
}

// Startup reports whether the vector is a startup case (expect.exit_code).
func (v Vector) Startup() bool { return v.Expect.ExitCode != nil }

// TokenSpec describes a token minted just before the request is sent.
type TokenSpec struct {
	Alg        string                     `json:"alg"`
	Key        string                     `json:"key"`
	Secret     *string                    `json:"secret"`
	Claims     json.RawMessage            `json:"claims"`
	Header     map[string]json.RawMessage `json:"header"`
	Raw        *string                    `json:"raw"`
	PayloadRaw *string                    `json:"payload_raw"`
	Tamper     *Tamper                    `json:"tamper"`
}

// Tamper changes a token after it was signed.
type Tamper struct {
	Claims    json.RawMessage `json:"claims"`
	Signature bool            `json:"signature"`
}

// Request is the HTTP request a vector sends through Envoy.
type Request struct {
	Method      string       `json:"method"`
	Path        string       `json:"path"`
	Headers     HeaderList   `json:"headers"`
	HeaderLines []HeaderLine `json:"header_lines"`
	RawHeaders  bool         `json:"raw_headers"`
	Omit        string       `json:"omit"`
	// ClientAddress sets attributes.source.address (README "Request").
	ClientAddress string `json:"client_address"`
}

// HeaderLine is one header line: a key and a value.
type HeaderLine struct {
	Key   string
	Value string
}

// UnmarshalJSON reads a ["key", "value"] pair.
func (l *HeaderLine) UnmarshalJSON(b []byte) error {
	var pair []string
	if err := json.Unmarshal(b, &pair); err != nil {
		return fmt.Errorf("header line: %w", err)
	}
	if len(pair) != 2 {
		return fmt.Errorf("header line %s: want [key, value]", b)
	}
	l.Key, l.Value = pair[0], pair[1]
	return nil
}

// HeaderList is a JSON object of string values read in document order.
type HeaderList []HeaderLine

// UnmarshalJSON keeps the object's key order.
func (h *HeaderList) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*h = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("headers: want a JSON object, got %s", b)
	}
	var out HeaderList
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("headers[%q]: %w", kt, err)
		}
		out = append(out, HeaderLine{Key: kt.(string), Value: v})
	}
	*h = out
	return nil
}

// Expect is what a vector wants back.
type Expect struct {
	Status                StatusSet               `json:"status"`
	Detail                *string                 `json:"detail"`
	DetailPrefix          *string                 `json:"detail_prefix"`
	Headers               map[string]HeaderExpect `json:"headers"`
	AbsentHeaders         []string                `json:"absent_headers"`
	ResponseHeaders       map[string]HeaderExpect `json:"response_headers"`
	AbsentResponseHeaders []string                `json:"absent_response_headers"`
	ExitCode              *int                    `json:"exit_code"`
	StderrContains        []string                `json:"stderr_contains"`
}

// StatusSet is the accepted HTTP statuses: one int or a list in JSON.
type StatusSet []int

// UnmarshalJSON accepts 200 as well as [401, 403].
func (s *StatusSet) UnmarshalJSON(b []byte) error {
	var one int
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StatusSet{one}
		return nil
	}
	var many []int
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("status: want an int or a list of ints, got %s", b)
	}
	*s = many
	return nil
}

// Has reports whether code is accepted.
func (s StatusSet) Has(code int) bool { return slices.Contains(s, code) }

func (s StatusSet) String() string {
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = fmt.Sprint(c)
	}
	return strings.Join(parts, " or ")
}

// HeaderExpect is one wanted header: an exact single value, a JSON array
// compared as a set, or a JSON value.
type HeaderExpect struct {
	Exact *string
	Set   []string // non-nil (maybe empty) for the {"set": [...]} form
	JSON  json.RawMessage
}

// UnmarshalJSON reads "v", {"set": [...]} or {"json": v}.
func (e *HeaderExpect) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		e.Exact = &s
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || len(obj) != 1 {
		return fmt.Errorf("header expectation %s: want a string, {\"set\": [...]} or {\"json\": v}", b)
	}
	if raw, ok := obj["set"]; ok {
		var set []string
		if err := json.Unmarshal(raw, &set); err != nil || set == nil {
			return fmt.Errorf("header expectation %s: set must be a list of strings", b)
		}
		e.Set = set
		return nil
	}
	if raw, ok := obj["json"]; ok {
		e.JSON = raw
		return nil
	}
	return fmt.Errorf("header expectation %s: want a string, {\"set\": [...]} or {\"json\": v}", b)
}

func (e HeaderExpect) String() string {
	switch {
	case e.Exact != nil:
		return fmt.Sprintf("%q", *e.Exact)
	case e.Set != nil:
		b, _ := json.Marshal(e.Set)
		return "the set " + string(b)
	default:
		return "JSON " + string(e.JSON)
	}
}

// Group is the vectors that share one server process: the same effective
// configuration and environment. A startup vector is always alone in its
// group.
type Group struct {
	Config  json.RawMessage // nil: serve without --config
	Env     map[string]string
	Startup bool
	Vectors []Vector
	// ServiceAccounts are the rows of the group's @sqlite:NAME databases.
	ServiceAccounts []ServiceAccount
}

type fileJSON struct {
	Description     string           `json:"description"`
	Config          json.RawMessage  `json:"config"`
	Env             json.RawMessage  `json:"env"`
	ServiceAccounts []ServiceAccount `json:"service_accounts"`
	Sequential      bool             `json:"sequential"`
	Vectors         []Vector         `json:"vectors"`
}

// LoadDir reads every *.json vector file in dir, sorted by name. It fails
// when a file does not parse, uses a field this harness does not know (a
// silently ignored expectation would be a test that cannot fail), or when
// two vectors share a name.
func LoadDir(dir string) ([]File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.json vector files in %s", dir)
	}
	sort.Strings(paths)
	var files []File
	seen := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := ParseFile(filepath.Base(p), b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		f.Path = p
		for _, v := range f.Vectors {
			if prev, dup := seen[v.Name]; dup {
				return nil, fmt.Errorf("%s: vector %q already defined in %s", p, v.Name, prev)
			}
			seen[v.Name] = p
		}
		files = append(files, f)
	}
	return files, nil
}

// ParseFile parses one vector file's content; name is its base name.
func ParseFile(name string, b []byte) (File, error) {
	f := File{Name: strings.TrimSuffix(name, ".json")}
	trimmed := bytes.TrimSpace(b)
	var fj fileJSON
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := strictUnmarshal(trimmed, &fj.Vectors); err != nil {
			return File{}, err
		}
	} else if err := strictUnmarshal(trimmed, &fj); err != nil {
		return File{}, err
	}
	f.Description = fj.Description
	f.Config = nonNull(fj.Config)
	env, err := parseEnv(fj.Env)
	if err != nil {
		return File{}, err
	}
	f.Env = env
	f.ServiceAccounts = fj.ServiceAccounts
	f.Sequential = fj.Sequential
	f.Vectors = fj.Vectors
	for i, v := range f.Vectors {
		if err := v.check(); err != nil {
			return File{}, fmt.Errorf("vector %d (%q): %w", i, v.Name, err)
		}
	}
	return f, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func (v Vector) check() error {
	if v.Name == "" {
		return errors.New("no name")
	}
	e := v.Expect
	switch {
	case e.ExitCode != nil && len(e.Status) > 0:
		return errors.New("expect has both exit_code and status")
	case e.ExitCode == nil && len(e.Status) == 0:
		return errors.New("expect has neither status nor exit_code")
	case e.ExitCode == nil && len(e.StderrContains) > 0:
		return errors.New("stderr_contains without exit_code")
	case e.Detail != nil && e.DetailPrefix != nil:
		return errors.New("expect has both detail and detail_prefix")
	}
	switch v.Request.Omit {
	case "", "http", "attributes":
	default:
		return fmt.Errorf("request.omit %q: want \"http\" or \"attributes\"", v.Request.Omit)
	}
	return nil
}

// Groups splits the file's vectors by effective configuration and
// environment, in order of first appearance.
func (f File) Groups() ([]Group, error) {
	var groups []Group
	index := map[string]int{}
	for _, v := range f.Vectors {
		cfg := f.Config
		if v.Config != nil {
			cfg = nonNull(v.Config)
		}
		accounts := f.ServiceAccounts
		if nonNull(v.ServiceAccounts) != nil {
			if err := strictUnmarshal(v.ServiceAccounts, &accounts); err != nil {
				return nil, fmt.Errorf("vector %q: service_accounts: %w", v.Name, err)
			}
		}
		env := f.Env
		if v.Env != nil {
			e, err := parseEnv(v.Env)
			if err != nil {
				return nil, fmt.Errorf("vector %q: %w", v.Name, err)
			}
			env = e
		}
		if v.Startup() {
			groups = append(groups, Group{Config: cfg, Env: env, Startup: true, Vectors: []Vector{v}, ServiceAccounts: accounts})
			continue
		}
		key, err := groupKey(cfg, env, accounts)
		if err != nil {
			return nil, fmt.Errorf("vector %q: %w", v.Name, err)
		}
		if i, ok := index[key]; ok {
			groups[i].Vectors = append(groups[i].Vectors, v)
			continue
		}
		index[key] = len(groups)
		groups = append(groups, Group{Config: cfg, Env: env, Vectors: []Vector{v}, ServiceAccounts: accounts})
	}
	return groups, nil
}

func groupKey(cfg json.RawMessage, env map[string]string, accounts []ServiceAccount) (string, error) {
	var b bytes.Buffer
	if cfg != nil {
		if err := json.Compact(&b, cfg); err != nil {
			return "", fmt.Errorf("config: %w", err)
		}
	}
	b.WriteByte(0)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\x00", k, env[k])
	}
	// Different service-account fixtures never share a server.
	acc, err := json.Marshal(accounts)
	if err != nil {
		return "", err
	}
	b.WriteByte(0)
	b.Write(acc)
	return b.String(), nil
}

func nonNull(raw json.RawMessage) json.RawMessage {
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return raw
}

func parseEnv(raw json.RawMessage) (map[string]string, error) {
	if nonNull(raw) == nil {
		return nil, nil
	}
	var env map[string]string
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("env: want an object of strings: %w", err)
	}
	return env, nil
}
