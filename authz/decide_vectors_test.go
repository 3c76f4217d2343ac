package authz

// The conformance vectors (test/testdata/conformance, README.md there) run
// in-process through Load, New and Decide: the same decisions the
// black-box suite in test/ checks over gRPC, without the transport. The
// schema, loader, placeholders and token minting are internal/conformance's.

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

// buildRequest builds the authz.Request an adapter would make of the
// vector's CheckRequest (README "Request").
func buildRequest(v *conformance.Vector, tok, tok2 string) *Request {
	if v.Request.Omit != "" {
		return &Request{Malformed: true}
	}
	method := v.Request.Method
	if method == "" {
		method = "GET"
	}
	h := map[string]string{}
	mentioned := false
	for _, l := range v.Request.Headers {
		val := l.Value
		if strings.Contains(val, "{token}") {
			mentioned = true
		}
		val = strings.ReplaceAll(strings.ReplaceAll(val, "{token2}", tok2), "{token}", tok)
		h[strings.ToLower(l.Key)] = val
	}
	if v.Token != nil && !mentioned {
		h["authorization"] = "Bearer " + tok
	}
	for _, l := range v.Request.HeaderLines {
		name := strings.ToLower(l.Key)
		if prev, ok := h[name]; ok {
			h[name] = prev + "," + l.Value
		} else {
			h[name] = l.Value
		}
	}
	if host, ok := h["host"]; ok {
		delete(h, "host")
		h[":authority"] = host
	}
	for name, def := range map[string]string{
		":authority": "agentos.test", ":method": method, ":path": v.Request.Path, ":scheme": "http",
		"x-forwarded-proto": "http", "x-request-id": "req-" + v.Name, "user-agent": "conformance",
	} {
		if _, ok := h[name]; !ok {
			h[name] = def
		}
	}
	return &Request{Method: method, Path: v.Request.Path, Headers: h}
}

// checkVector compares a decision with the vector's expectation and
// returns the differences.
func checkVector(v *conformance.Vector, r *Request, d Decision) []string {
	var diffs []string
	bad := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	e := &v.Expect
	if !e.Status.Has(d.Status) {
		bad("status %d (%s, %q), want %v", d.Status, d.Reason, d.Detail, e.Status)
		return diffs
	}
	if d.Allowed() {
		if d.Detail != "" || d.Response != nil {
			bad("an allow with detail %q / response headers %v", d.Detail, d.Response)
		}
	} else {
		// docs/CONTRACT.md §5: 400, 401, 403, 429 or 503, always with a detail.
		if d.Detail == "" || (d.Status != 400 && d.Status != 401 && d.Status != 403 && d.Status != 429 && d.Status != 503) {
			bad("deny %d with detail %q", d.Status, d.Detail)
		}
	}
	if e.Detail != nil && d.Detail != *e.Detail {
		bad("detail %q, want %q", d.Detail, *e.Detail)
	}
	if e.DetailPrefix != nil && !strings.HasPrefix(d.Detail, *e.DetailPrefix) {
		bad("detail %q, want prefix %q", d.Detail, *e.DetailPrefix)
	}
	// The upstream's view: client headers, then our set headers
	// (overwriting), then our removals.
	up := map[string]string{}
	if d.Allowed() {
		maps.Copy(up, r.Headers)
		seen := map[string]bool{}
		for _, h := range d.Upstream {
			if seen[h.Name] {
				bad("upstream header %s set twice", h.Name)
			}
			seen[h.Name] = true
			up[h.Name] = h.Value
		}
		if !sort.StringsAreSorted(d.Remove) {
			bad("Remove %q not sorted", d.Remove)
		}
		for _, name := range d.Remove {
			if seen[name] {
				bad("header %s both set and removed", name)
			}
			delete(up, name)
		}
		// Always: no client-sent x-agentos-* value reaches the upstream.
		for name, val := range r.Headers {
			if strings.HasPrefix(name, "x-agentos-") && !seen[name] && up[name] == val {
				bad("client header %s: %q passes to the upstream", name, val)
			}
		}
	}
	for name, want := range e.Headers {
		got, ok := up[name]
		if !ok {
			bad("upstream header %s absent, want %s", name, want)
			continue
		}
		if diff := headerDiff(name, got, want); diff != "" {
			bad("%s", diff)
		}
	}
	for _, name := range e.AbsentHeaders {
		if got, ok := up[name]; ok {
			bad("upstream header %s = %q, want absent", name, got)
		}
	}
	resp := map[string]string{}
	for _, h := range d.Response {
		resp[h.Name] = h.Value
	}
	for name, want := range e.ResponseHeaders {
		got, ok := resp[name]
		if !ok {
			bad("response header %s absent, want %s", name, want)
			continue
		}
		if diff := headerDiff("response "+name, got, want); diff != "" {
			bad("%s", diff)
		}
	}
	for _, name := range e.AbsentResponseHeaders {
		if got, ok := resp[name]; ok {
			bad("response header %s = %q, want absent", name, got)
		}
	}
	return diffs
}

// headerDiff compares one header value with its expectation (README
// "Expectations": an exact value, a set of ids, or a JSON value); "" when
// it matches.
func headerDiff(name, got string, want conformance.HeaderExpect) string {
	switch {
	case want.Exact != nil:
		if got != *want.Exact {
			return fmt.Sprintf("%s = %q, want %q", name, got, *want.Exact)
		}
	case want.Set != nil:
		var ids []string
		if err := json.Unmarshal([]byte(got), &ids); err != nil {
			return fmt.Sprintf("%s = %q: not a JSON array of strings", name, got)
		}
		if len(ids) != len(want.Set) || !sameElements(ids, want.Set) {
			return fmt.Sprintf("%s = %q, want the set %q", name, got, want.Set)
		}
	default:
		var g, w any
		if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal(want.JSON, &w) != nil || !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("%s = %q, want JSON %s", name, got, want.JSON)
		}
	}
	return ""
}

func sameElements(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b) && len(slices.Compact(a)) == len(b)
}

// TestConformanceVectors runs every vector conformance.Load reads (the
// vendored set, or $AGENTOS_CONFORMANCE_DIR) through Load → New → Decide
// under a fixed clock, the startup cases included. Missing material is a
// failure, never a skip.
func TestConformanceVectors(t *testing.T) {
	top := t
	_, files, keys, err := conformance.Load()
	if err != nil {
		t.Fatalf("conformance material: %v", err)
	}
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	minter := conformance.Minter{Keys: keys, Now: clock}
	total, passed := 0, 0
	for _, f := range files {
		groups, err := f.Groups()
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		for _, g := range groups {
			// One Authorizer per group: its configuration and environment,
			// placeholders written into a directory of the group's own.
			sub := &conformance.Substituter{Keys: keys, Dir: t.TempDir(), Accounts: g.ServiceAccounts}
			// The service-account fixtures are dated from the real clock
			// (Substituter), so their group runs at that moment, held.
			clock, minter := clock, minter
			if len(g.ServiceAccounts) > 0 {
				at := time.Now()
				clock = func() time.Time { return at }
				minter = conformance.Minter{Keys: keys, Now: clock}
			}
			var yamlText []byte
			if g.Config != nil {
				if yamlText, err = sub.Config(g.Config); err != nil {
					t.Fatalf("%s: config: %v", f.Path, err)
				}
			}
			envResolved, err := sub.Env(g.Env)
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			var a *Authorizer
			for i := range g.Vectors {
				v := &g.Vectors[i]
				total++
				t.Run(v.Name, func(t *testing.T) {
					if g.Startup {
						cfg, err := Load(yamlText, env(envResolved), LoadOptions{})
						if err == nil {
							_, err = New(cfg, Options{Clock: clock})
						}
						if err == nil {
							t.Fatalf("config %s loaded, want a configuration error (exit %d)", yamlText, *v.Expect.ExitCode)
						}
						for _, want := range v.Expect.StderrContains {
							if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
								t.Errorf("config error %q\nwant it to name %q", err, want)
							}
						}
						passed++
						return
					}
					if a == nil {
						cfg, err := Load(yamlText, env(envResolved), LoadOptions{})
						if err != nil {
							t.Fatalf("Load(%s) = %v", yamlText, err)
						}
						// A service_accounts database is opened as serve opens it.
						var authn *serviceaccount.Authenticator
						if cfg.ServiceAccounts.Enabled() {
							store, err := serviceaccount.Open(t.Context(), cfg.ServiceAccounts.StoreConfig(), nil)
							if err != nil {
								t.Fatalf("service accounts: %v", err)
							}
							top.Cleanup(store.Close)
							if authn, err = serviceaccount.NewAuthenticator(store, cfg.ServiceAccounts.Options(), nil); err != nil {
								t.Fatalf("service accounts: %v", err)
							}
						}
						if a, err = New(cfg, Options{Clock: clock, ServiceAccounts: authn}); err != nil {
							t.Fatalf("New(%s) = %v", yamlText, err)
						}
						top.Cleanup(a.Close) // the group's later vectors use it too
					}
					var tok, tok2 string
					if v.Token != nil {
						if tok, err = minter.Mint(*v.Token); err != nil {
							t.Fatalf("token: %v", err)
						}
					}
					if v.Token2 != nil {
						if tok2, err = minter.Mint(*v.Token2); err != nil {
							t.Fatalf("token2: %v", err)
						}
					}
					r := buildRequest(v, tok, tok2)
					d := a.Decide(t.Context(), r)
					if diffs := checkVector(v, r, d); len(diffs) > 0 {
						t.Errorf("Decide(%s %s) = %d %s %q:\n  %s", r.Method, r.Path, d.Status, d.Reason, d.Detail, strings.Join(diffs, "\n  "))
						return
					}
					passed++
				})
			}
		}
	}
	if total == 0 {
		t.Fatal("no conformance vectors")
	}
	t.Logf("conformance vectors: %d of %d passed in-process", passed, total)
}
