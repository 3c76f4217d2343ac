package envoy

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/agentos-authz/agentos-authz/authz"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
)

// The policy API (proto/agentos/authz/v1/authz.proto): Explain decides a
// request through the same CheckRequest translation and the same
// Authorizer as Check, so the two cannot drift; ListRoutes and GetConfig
// describe the running configuration. It is served on the admin listener
// only, never on the ext_authz listener Envoy reaches.

// PolicyState is what the policy API describes: the running Authorizer,
// its configuration and where that came from.
type PolicyState struct {
	Authorizer *authz.Authorizer
	Config     *authz.Config
	// Settings are the caller's own sections of the same file (cmd's
	// listener and process settings, loaded through
	// authz.LoadOptions.Extra): GetConfig shows them beside Config's, as
	// the effective configuration. Nil: none.
	Settings any
	// Path and SHA256 name the configuration file ("" when none was read).
	Path   string
	SHA256 string
	// LoadedAt is when the configuration was loaded.
	LoadedAt time.Time
}

// PolicyServer serves agentos.authz.v1.PolicyService. It answers
// UNAVAILABLE until Set gives it a configuration.
type PolicyServer struct {
	authzv1.UnimplementedPolicyServiceServer

	state atomic.Pointer[PolicyState]
}

var _ authzv1.PolicyServiceServer = (*PolicyServer)(nil)

// NewPolicyServer returns a PolicyServer with no configuration yet.
func NewPolicyServer() *PolicyServer { return &PolicyServer{} }

// Set publishes the running configuration; st must not be modified after.
func (p *PolicyServer) Set(st *PolicyState) { p.state.Store(st) }

func (p *PolicyServer) loaded() (*PolicyState, error) {
	st := p.state.Load()
	if st == nil || st.Authorizer == nil || st.Config == nil {
		return nil, status.Error(codes.Unavailable, "agentos-authz is starting: configuration not loaded yet")
	}
	return st, nil
}

// Explain decides the request exactly as Check would and explains it.
func (p *PolicyServer) Explain(ctx context.Context, req *authzv1.ExplainRequest) (*authzv1.ExplainResponse, error) {
	st, err := p.loaded()
	if err != nil {
		return nil, err
	}
	cr := ExplainCheckRequest(st.Config, req)
	r := fromCheckRequest(ctx, cr)
	r.Transport = authz.TransportGRPC
	d := st.Authorizer.Explain(ctx, &r)
	return ExplainResponse(&d), nil
}

// ExplainCheckRequest builds the CheckRequest Envoy would send for req,
// through NewCheckRequest like every other caller without an Envoy: the
// headers as given (names lower-cased, repeats joined), and the token
// where cfg looks for a credential.
func ExplainCheckRequest(cfg *authz.Config, req *authzv1.ExplainRequest) *authv3.CheckRequest {
	return NewCheckRequest(RequestSpec{
		Method:  req.GetMethod(),
		Path:    req.GetPath(),
		Headers: headerLines(req.GetHeaders()),
		Token:   req.GetToken(),
		Config:  cfg,
	})
}

// ExplainResponse renders a decision (from Authorizer.Explain) as the API's
// answer.
func ExplainResponse(d *authz.Decision) *authzv1.ExplainResponse {
	out := &authzv1.ExplainResponse{
		Decision:       authzv1.Decision_DECISION_DENY,
		Status:         int32(d.Status),
		Detail:         d.Detail,
		Reason:         d.Reason.String(),
		Step:           authzv1.Step(d.Reason.Step()),
		Rule:           d.Rule,
		RequiredScopes: d.Required,
		MissingScopes:  d.Missing,
		UserId:         d.UserID,
		Auth:           d.Auth,
		RemovedHeaders: d.Remove,
	}
	if d.Passes() {
		out.Decision = authzv1.Decision_DECISION_ALLOW
	}
	out.Shadow = d.Shadow
	for _, m := range d.Matched {
		out.MatchedScopes = append(out.MatchedScopes, &authzv1.MatchedScope{Required: m.Required, By: m.By})
	}
	out.UpstreamHeaders = protoHeaders(d.Upstream)
	out.ResponseHeaders = protoHeaders(d.Response)
	return out
}

func protoHeaders(hs []authz.Header) []*authzv1.Header {
	out := make([]*authzv1.Header, 0, len(hs))
	for _, h := range hs {
		out = append(out, &authzv1.Header{Name: h.Name, Value: h.Value})
	}
	return out
}

// ListRoutes returns the effective route table in match order.
func (p *PolicyServer) ListRoutes(context.Context, *authzv1.ListRoutesRequest) (*authzv1.ListRoutesResponse, error) {
	st, err := p.loaded()
	if err != nil {
		return nil, err
	}
	rt, ok := st.Authorizer.Routes()
	if !ok {
		return nil, status.Error(codes.Unavailable, "agentos-authz: no route table loaded")
	}
	return RoutesResponse(&rt), nil
}

// RoutesResponse renders a route table as ListRoutes answers it; the routes
// command prints the same.
func RoutesResponse(rt *authz.Routes) *authzv1.ListRoutesResponse {
	shadowedBy := make(map[string]string)
	for _, sh := range rt.Table.Shadowed() {
		shadowedBy[sh.Rule.Key] = sh.By.Key
	}
	out := &authzv1.ListRoutesResponse{
		ExcludedRoutes: rt.Excluded,
		AdminScope:     rt.Table.AdminScope(),
		UnmappedRoutes: rt.Table.Unmapped().String(),
		Authorization:  rt.Authorization,
	}
	for _, r := range rt.Table.Rules() {
		origin, overrides := authz.RouteOrigin(&r)
		route := &authzv1.Route{
			Key: r.Key, Method: r.Method, Pattern: r.Pattern, Scopes: r.Scopes,
			InterfaceType: r.Interface, Overrides: overrides,
		}
		switch origin {
		case "custom":
			route.Origin = authzv1.Origin_ORIGIN_CUSTOM
		case "interface":
			route.Origin = authzv1.Origin_ORIGIN_INTERFACE
		default:
			route.Origin = authzv1.Origin_ORIGIN_DEFAULT
		}
		if by, ok := shadowedBy[r.Key]; ok {
			route.Shadowed, route.ShadowedBy = true, by
		}
		out.Routes = append(out.Routes, route)
	}
	return out
}

// GetConfig returns the running configuration, secrets redacted.
func (p *PolicyServer) GetConfig(context.Context, *authzv1.GetConfigRequest) (*authzv1.GetConfigResponse, error) {
	st, err := p.loaded()
	if err != nil {
		return nil, err
	}
	cfg, redacted, err := RedactedConfig(st.Config, st.Settings)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "render configuration: %v", err)
	}
	return &authzv1.GetConfigResponse{
		Config: cfg, RedactedFields: redacted, Path: st.Path, Sha256: st.SHA256,
		LoadedAt: timestamppb.New(st.LoadedAt),
	}, nil
}

// redactedValue replaces a secret.
const redactedValue = "[redacted]"

// RedactedConfig renders cfg as a Struct with every key, secret and
// security key replaced by "[redacted]", and returns the YAML paths it
// redacted. settings, when non-nil, are further top-level sections of the
// same file (PolicyState.Settings), rendered into the same tree. A field
// is a secret when its name holds "key", "secret", "password" or "token"
// and its value is a non-empty string or list (the booleans
// security_key_migration and the like are kept); a URL keeps neither its
// user information nor its query. Judging by name rather than by a list of
// fields keeps a secret added later redacted.
func RedactedConfig(cfg *authz.Config, settings any) (*structpb.Struct, []string, error) {
	tree := map[string]any{}
	for _, part := range []any{cfg, settings} {
		if part == nil {
			continue
		}
		text, err := yaml.Marshal(part)
		if err != nil {
			return nil, nil, err
		}
		var sub map[string]any
		if err := yaml.Unmarshal(text, &sub); err != nil {
			return nil, nil, err
		}
		maps.Copy(tree, sub)
	}
	var redacted []string
	redactTree(tree, "", &redacted)
	slices.Sort(redacted)
	s, err := structpb.NewStruct(tree)
	if err != nil {
		return nil, nil, err
	}
	return s, redacted, nil
}

func redactTree(v any, path string, redacted *[]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if secretName(k) {
				if r, ok := redactValue(child); ok {
					t[k] = r
					*redacted = append(*redacted, p)
				}
				continue
			}
			if s, ok := child.(string); ok && strings.Contains(s, "://") {
				t[k] = redactURL(s)
				continue
			}
			redactTree(child, p, redacted)
		}
	case []any:
		for i, child := range t {
			if s, ok := child.(string); ok && strings.Contains(s, "://") {
				t[i] = redactURL(s)
				continue
			}
			redactTree(child, path, redacted)
		}
	}
}

func secretName(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"key", "secret", "password", "token"} {
		// token_source and upstream.token_ttl name no secret.
		if strings.Contains(k, w) && k != "token_source" && k != "token_ttl" {
			return true
		}
	}
	return false
}

// redactValue replaces a non-empty string, or each element of a non-empty
// list; anything else (booleans, numbers, empty values) is kept.
func redactValue(v any) (any, bool) {
	switch t := v.(type) {
	case string:
		if t != "" {
			return redactedValue, true
		}
	case []any:
		if len(t) > 0 {
			out := make([]any, len(t))
			for i := range out {
				out[i] = redactedValue
			}
			return out, true
		}
	}
	return v, false
}

// redactURL drops a URL's user information and query, which may carry
// credentials.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return redactedValue
	}
	if u.User != nil {
		u.User = url.User(redactedValue)
	}
	if u.RawQuery != "" {
		u.RawQuery = redactedValue
	}
	return u.String()
}
