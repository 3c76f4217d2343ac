package deploy_test

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Every typed_config type the bootstraps use must be registered, or protojson cannot
	// resolve its "@type" (the imports above register HCM, ext_authz, header_mutation and
	// the upstream HTTP protocol options).
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

// envoyMode is the ext_authz transport a bootstrap is meant for.
type envoyMode string

const (
	modeGRPC envoyMode = "grpc"
	modeHTTP envoyMode = "http"
)

const (
	extAuthzType       = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
	routerType         = "envoy.extensions.filters.http.router.v3.Router"
	headerMutationType = "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
	hcmType            = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	upstreamHTTPKey    = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	maxCheckTimeout    = 5 * time.Second
)

// decodeBootstrap reads an Envoy bootstrap the way Envoy's own config loader does: YAML
// with duplicate keys refused, converted to JSON, then protojson, which refuses unknown
// fields and typed_config types that are not registered. It then validates the result,
// including every message packed in an Any (see validateTree).
func decodeBootstrap(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("protojson: %w", err)
	}
	if err := validateTree(&b); err != nil {
		return nil, err
	}
	return &b, nil
}

type allValidator interface{ ValidateAll() error }

// validateTree runs the generated ValidateAll on m and on every message packed in an Any
// below it, at any depth: a message's ValidateAll stops at google.protobuf.Any, so the
// Bootstrap's alone never looks inside a filter's typed_config. It also refuses deprecated
// fields, which Envoy warns about today and rejects in a later release.
func validateTree(m proto.Message) error {
	var errs []error
	if v, ok := m.(allValidator); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ProtoReflect().Descriptor().FullName(), err))
		}
	}
	walkMessages(m.ProtoReflect(), string(m.ProtoReflect().Descriptor().Name()), func(path string, msg protoreflect.Message) {
		msg.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDeprecated() {
				errs = append(errs, fmt.Errorf("%s.%s: deprecated field", path, fd.Name()))
			}
			return true
		})
		a, ok := msg.Interface().(*anypb.Any)
		if !ok {
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: unpack %s: %w", path, a.GetTypeUrl(), err))
			return
		}
		if err := validateTree(inner); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", path, a.GetTypeUrl(), err))
		}
	})
	return errors.Join(errs...)
}

// walkMessages calls visit for m and every message set below it (singular, repeated and
// map values), with a path such as static_resources.listeners[0].address. It does not look
// inside an Any's bytes: validateTree unpacks those itself.
func walkMessages(m protoreflect.Message, path string, visit func(path string, m protoreflect.Message)) {
	visit(path, m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		field := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			list := v.List()
			for i := range list.Len() {
				walkMessages(list.Get(i).Message(), fmt.Sprintf("%s[%d]", field, i), visit)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				walkMessages(mv.Message(), fmt.Sprintf("%s[%q]", field, k.String()), visit)
				return true
			})
		default:
			walkMessages(v.Message(), field, visit)
		}
		return true
	})
}

// checkBootstrap checks what schema validation cannot: the safe settings the deployment
// guide promises, and that every cluster a route or the check refers to exists.
func checkBootstrap(b *bootstrapv3.Bootstrap, mode envoyMode) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	if addr := b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); addr != "" {
		if ip := net.ParseIP(addr); ip == nil || !ip.IsLoopback() {
			fail("admin.address: %q is not a loopback address; the admin interface must not be reachable from outside", addr)
		}
	}

	hcms := 0
	for li, l := range b.GetStaticResources().GetListeners() {
		for ci, fc := range l.GetFilterChains() {
			for fi, f := range fc.GetFilters() {
				path := fmt.Sprintf("listeners[%d](%s).filter_chains[%d].filters[%d]", li, l.GetName(), ci, fi)
				if typeName(f.GetTypedConfig()) != hcmType {
					continue
				}
				hcms++
				var hcm hcmv3.HttpConnectionManager
				if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
					fail("%s: %v", path, err)
					continue
				}
				errs = append(errs, checkHCM(path, &hcm, clusters, mode)...)
			}
		}
	}
	if hcms == 0 {
		fail("no listener has an http_connection_manager")
	}
	return errors.Join(errs...)
}

func checkHCM(path string, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster, mode envoyMode) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(path+": "+format, args...))
	}

	// ENVOY-NOTES §4: the check and the upstream must see the same normalised path.
	if !hcm.GetNormalizePath().GetValue() {
		fail("normalize_path must be true")
	}
	if !hcm.GetMergeSlashes() {
		fail("merge_slashes must be true")
	}
	if got := hcm.GetPathWithEscapedSlashesAction(); got != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		fail("path_with_escaped_slashes_action is %s, want REJECT_REQUEST", got)
	}

	if hcm.GetRouteConfig() == nil {
		fail("route_config must be inline (static bootstrap)")
	}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for ri, r := range vh.GetRoutes() {
			c := r.GetRoute().GetCluster()
			if r.GetRoute() != nil && c == "" {
				fail("virtual_hosts(%s).routes[%d]: route has no static cluster", vh.GetName(), ri)
				continue
			}
			if _, ok := clusters[c]; c != "" && !ok {
				fail("virtual_hosts(%s).routes[%d]: cluster %q is not defined", vh.GetName(), ri, c)
			}
		}
	}

	filters := hcm.GetHttpFilters()
	authzAt, routerAt, stripAt := -1, -1, -1
	for i, f := range filters {
		switch typeName(f.GetTypedConfig()) {
		case extAuthzType:
			if authzAt >= 0 {
				fail("http_filters[%d]: a second ext_authz filter", i)
			}
			authzAt = i
		case routerType:
			routerAt = i
		case headerMutationType:
			var hm headermutationv3.HeaderMutation
			if err := f.GetTypedConfig().UnmarshalTo(&hm); err != nil {
				fail("http_filters[%d]: %v", i, err)
				continue
			}
			// Contract §5: every inbound x-agentos-* header, names agentos-authz never
			// sets included (x-agentos-foo): only a prefix removal passes.
			if removesAll(hm.GetMutations().GetRequestMutations(), slices.Concat(agentosHeaders, forgedAgentosHeaders)) && stripAt < 0 {
				stripAt = i
			}
		}
	}
	switch {
	case authzAt < 0:
		fail("http_filters: no ext_authz filter")
		return errs
	case routerAt < 0:
		fail("http_filters: no router filter")
	case routerAt != len(filters)-1:
		fail("http_filters: the router is at %d, it must be the last filter (%d)", routerAt, len(filters)-1)
	case authzAt > routerAt:
		fail("http_filters: ext_authz (%d) comes after the router (%d) and would never run", authzAt, routerAt)
	}
	if stripAt < 0 || stripAt > authzAt {
		fail("http_filters: no header_mutation before ext_authz removes the client's x-agentos-* headers")
	}

	var authz extauthzv3.ExtAuthz
	if err := filters[authzAt].GetTypedConfig().UnmarshalTo(&authz); err != nil {
		fail("http_filters[%d]: %v", authzAt, err)
		return errs
	}
	for _, err := range checkExtAuthz(&authz, clusters, mode) {
		errs = append(errs, fmt.Errorf("%s.http_filters[%d](ext_authz): %w", path, authzAt, err))
	}
	return errs
}

func checkExtAuthz(a *extauthzv3.ExtAuthz, clusters map[string]*clusterv3.Cluster, mode envoyMode) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if a.GetFailureModeAllow() {
		fail("failure_mode_allow must be false: an unreachable authz service would let every request through")
	}
	if a.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		fail("transport_api_version is %s, want V3", a.GetTransportApiVersion())
	}
	checkTimeout := func(field string, d interface{ AsDuration() time.Duration }, set bool) {
		switch {
		case !set:
			fail("%s: no check timeout", field)
		case d.AsDuration() <= 0 || d.AsDuration() > maxCheckTimeout:
			fail("%s: check timeout %s outside (0, %s]", field, d.AsDuration(), maxCheckTimeout)
		}
	}

	switch mode {
	case modeGRPC:
		g := a.GetGrpcService()
		if g == nil {
			fail("grpc_service: missing in a gRPC-mode bootstrap")
			return errs
		}
		checkTimeout("grpc_service.timeout", g.GetTimeout(), g.GetTimeout() != nil)
		name := g.GetEnvoyGrpc().GetClusterName()
		c, ok := clusters[name]
		if !ok {
			fail("grpc_service.envoy_grpc.cluster_name: cluster %q is not defined", name)
			return errs
		}
		if !usesHTTP2(c) {
			fail("cluster %q: gRPC needs HTTP/2: typed_extension_protocol_options[%s].explicit_http_config.http2_protocol_options", name, upstreamHTTPKey)
		}
	case modeHTTP:
		h := a.GetHttpService()
		if h == nil {
			fail("http_service: missing in an HTTP-mode bootstrap")
			return errs
		}
		uri := h.GetServerUri()
		checkTimeout("http_service.server_uri.timeout", uri.GetTimeout(), uri.GetTimeout() != nil)
		if _, ok := clusters[uri.GetCluster()]; !ok {
			fail("http_service.server_uri.cluster: cluster %q is not defined", uri.GetCluster())
		}
		resp := h.GetAuthorizationResponse()
		// docs/CONTRACT.md §9: the identity token replaces the client's Authorization.
		for _, hdr := range append([]string{"authorization"}, agentosHeaders...) {
			if !matchesAny(resp.GetAllowedUpstreamHeaders(), hdr) {
				fail("http_service.authorization_response.allowed_upstream_headers: %s would not reach the upstream", hdr)
			}
		}
		for _, hdr := range []string{"content-type", "www-authenticate", "access-control-allow-origin", "access-control-allow-credentials"} {
			if !matchesAny(resp.GetAllowedClientHeaders(), hdr) {
				fail("http_service.authorization_response.allowed_client_headers: %s of a denial would not reach the client", hdr)
			}
		}
		for _, hdr := range []string{"authorization", "cookie", "origin", "x-request-id"} {
			if !matchesAny(a.GetAllowedHeaders(), hdr) {
				fail("allowed_headers: %s would not reach agentos-authz", hdr)
			}
		}
		for _, hdr := range spoofableHeaders {
			if matchesAny(a.GetAllowedHeaders(), hdr) {
				fail("allowed_headers: client-sent %s would reach agentos-authz and override the checked request", hdr)
			}
		}
	default:
		fail("unknown mode %q", mode)
	}
	return errs
}

// usesHTTP2 reports whether a cluster speaks HTTP/2 to its endpoints.
func usesHTTP2(c *clusterv3.Cluster) bool {
	packed, ok := c.GetTypedExtensionProtocolOptions()[upstreamHTTPKey]
	if !ok {
		return false
	}
	var opts upstreamhttpv3.HttpProtocolOptions
	if err := packed.UnmarshalTo(&opts); err != nil {
		return false
	}
	return opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
}

// removesAll reports whether the request mutations remove every one of the headers.
func removesAll(mutations []*mutationrulesv3.HeaderMutation, headers []string) bool {
	for _, h := range headers {
		removed := false
		for _, m := range mutations {
			if m.GetRemove() == h || stringMatch(m.GetRemoveOnMatch().GetKeyMatcher(), h) {
				removed = true
				break
			}
		}
		if !removed {
			return false
		}
	}
	return true
}

func typeName(a *anypb.Any) string {
	if a == nil {
		return ""
	}
	return string(a.MessageName())
}

func matchesAny(l *matcherv3.ListStringMatcher, s string) bool {
	for _, m := range l.GetPatterns() {
		if stringMatch(m, s) {
			return true
		}
	}
	return false
}

// stringMatch evaluates an Envoy StringMatcher the way Envoy does (safe_regex is a full
// match); an unset or custom matcher matches nothing.
func stringMatch(m *matcherv3.StringMatcher, s string) bool {
	if m == nil {
		return false
	}
	norm := func(v string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(v)
		}
		return v
	}
	v := norm(s)
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return v == norm(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(v, norm(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(v, norm(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(v, norm(p.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile(`^(?:` + p.SafeRegex.GetRegex() + `)$`)
		return err == nil && re.MatchString(s)
	default:
		return false
	}
}

func loadBootstrap(t *testing.T, data []byte, mode envoyMode) error {
	t.Helper()
	b, err := decodeBootstrap(data)
	if err != nil {
		return err
	}
	return checkBootstrap(b, mode)
}

func TestEnvoyBootstraps(t *testing.T) {
	tests := []struct {
		file string
		mode envoyMode
	}{
		{file: "envoy/grpc.yaml", mode: modeGRPC},
		{file: "envoy/http.yaml", mode: modeHTTP},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if err := loadBootstrap(t, readDeployFile(t, tt.file), tt.mode); err != nil {
				t.Errorf("%s:\n%v", tt.file, err)
			}
		})
	}
}

// TestEnvoyValidatorsReject feeds the validators broken variants of the shipped files.
func TestEnvoyValidatorsReject(t *testing.T) {
	grpcYAML := string(readDeployFile(t, "envoy/grpc.yaml"))
	httpYAML := string(readDeployFile(t, "envoy/http.yaml"))
	routerBlock := "          # 3. The router must come last.\n" +
		"          - name: envoy.filters.http.router\n" +
		"            typed_config:\n" +
		"              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n"

	tests := []struct {
		name    string
		base    string
		mode    envoyMode
		mutate  func(t *testing.T, s string) string
		wantErr string
	}{
		{
			name: "unknown bootstrap field",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "static_resources:\n", "static_resources:\n  listenerz: []\n")
			},
			wantErr: `unknown field "listenerz"`,
		},
		{
			name: "duplicate YAML key",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "merge_slashes: true\n", "merge_slashes: true\n          merge_slashes: false\n")
			},
			wantErr: "merge_slashes",
		},
		{
			name: "unknown field inside a typed_config",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "failure_mode_allow: false\n", "failure_mode_allow: false\n              fail_open: false\n")
			},
			wantErr: `unknown field "fail_open"`,
		},
		{
			name: "typed_config type not registered",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "envoy.extensions.filters.http.router.v3.Router", "envoy.extensions.filters.http.lua.v3.Lua")
			},
			wantErr: "envoy.extensions.filters.http.lua.v3.Lua",
		},
		{
			name: "invalid value only the descent into typed_config catches",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "cluster_name: agentos_authz }", `cluster_name: "" }`)
			},
			wantErr: "ClusterName",
		},
		{
			name: "deprecated field",
			base: httpYAML, mode: modeHTTP,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "                authorization_response:\n",
					"                authorization_request:\n                  allowed_headers:\n                    patterns:\n                    - exact: cookie\n                authorization_response:\n")
			},
			wantErr: "allowed_headers: deprecated field",
		},
		{
			name: "fail open",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "failure_mode_allow: false", "failure_mode_allow: true")
			},
			wantErr: "failure_mode_allow must be false",
		},
		{
			name: "no check timeout",
			base: grpcYAML, mode: modeGRPC,
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "                timeout: 0.5s\n", "") },
			wantErr: "no check timeout",
		},
		{
			name: "transport api version unset",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "              transport_api_version: V3\n", "")
			},
			wantErr: "want V3",
		},
		{
			name: "path not normalised",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "normalize_path: true", "normalize_path: false")
			},
			wantErr: "normalize_path must be true",
		},
		{
			name: "slashes not merged",
			base: httpYAML, mode: modeHTTP,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "merge_slashes: true", "merge_slashes: false")
			},
			wantErr: "merge_slashes must be true",
		},
		{
			name: "escaped slashes kept",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: KEEP_UNCHANGED")
			},
			wantErr: "want REJECT_REQUEST",
		},
		{
			name: "router before ext_authz",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				s = mustReplace(t, s, routerBlock, "")
				return mustReplace(t, s, "          # 2. The check.", routerBlock+"          # 2. The check.")
			},
			wantErr: "must be the last filter",
		},
		{
			name: "client x-agentos headers not stripped",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, `prefix: "x-agentos-"`, `prefix: "x-agentos-user-"`)
			},
			wantErr: "removes the client's x-agentos-* headers",
		},
		{
			name: "HTTP mode: only the known x-agentos headers stripped",
			base: httpYAML, mode: modeHTTP,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, `- remove_on_match:
                    key_matcher: { prefix: "x-agentos-", ignore_case: true }`, `- remove: x-agentos-user-id
                - remove: x-agentos-session-id
                - remove: x-agentos-scopes
                - remove: x-agentos-auth
                - remove: x-agentos-accessible-ids
                - remove: x-agentos-claim-email`)
			},
			wantErr: "removes the client's x-agentos-* headers",
		},
		{
			name: "authz cluster on HTTP/1.1",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "http2_protocol_options: {}", "http_protocol_options: {}")
			},
			wantErr: "gRPC needs HTTP/2",
		},
		{
			name: "authz cluster not defined",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "cluster_name: agentos_authz }", "cluster_name: authz }")
			},
			wantErr: `cluster "authz" is not defined`,
		},
		{
			name: "route cluster not defined",
			base: httpYAML, mode: modeHTTP,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "cluster: agentos\n", "cluster: agentos_v2\n")
			},
			wantErr: `cluster "agentos_v2" is not defined`,
		},
		{
			name: "admin reachable from outside",
			base: grpcYAML, mode: modeGRPC,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "address: 127.0.0.1, port_value: 9901", "address: 0.0.0.0, port_value: 9901")
			},
			wantErr: "not a loopback address",
		},
		{
			name: "identity token not passed upstream",
			base: httpYAML, mode: modeHTTP,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "                    - exact: authorization\n", "")
			},
			wantErr: "authorization would not reach the upstream",
		},
		{
			name: "identity headers not passed upstream",
			base: httpYAML, mode: modeHTTP,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "- prefix: x-agentos-\n", "- exact: x-agentos-user-id\n")
			},
			wantErr: "x-agentos-scopes would not reach the upstream",
		},
		{
			name: "client may name the checked path",
			base: httpYAML, mode: modeHTTP,
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "- exact: x-request-id\n", "- prefix: x-\n")
			},
			wantErr: "client-sent x-original-uri",
		},
		{
			name: "gRPC bootstrap checked as HTTP mode",
			base: grpcYAML, mode: modeHTTP,
			mutate:  func(_ *testing.T, s string) string { return s },
			wantErr: "http_service: missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadBootstrap(t, []byte(tt.mutate(t, tt.base)), tt.mode)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadBootstrap(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestBootstrapValidateAllStopsAtAny shows why validateTree exists: the invalid cluster
// name inside the ext_authz typed_config passes the Bootstrap's own ValidateAll.
func TestBootstrapValidateAllStopsAtAny(t *testing.T) {
	s := mustReplace(t, string(readDeployFile(t, "envoy/grpc.yaml")), "cluster_name: agentos_authz }", `cluster_name: "" }`)
	js, err := yaml.YAMLToJSONStrict([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("Bootstrap.ValidateAll() = %v; it now descends into Any, validateTree's premise changed", err)
	}
	if err := validateTree(&b); err == nil {
		t.Fatal("validateTree() = nil, want the empty cluster_name inside typed_config reported")
	}
}

func TestStringMatch(t *testing.T) {
	tests := []struct {
		name    string
		matcher *matcherv3.StringMatcher
		in      string
		want    bool
	}{
		{name: "exact", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "cookie"}}, in: "cookie", want: true},
		{name: "exact is case sensitive", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Cookie"}}, in: "cookie", want: false},
		{name: "ignore case", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Cookie"}, IgnoreCase: true}, in: "cookie", want: true},
		{name: "prefix", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "x-agentos-"}}, in: "x-agentos-auth", want: true},
		{name: "prefix miss", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "x-agentos-"}}, in: "x-agent", want: false},
		{name: "suffix", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: "-id"}}, in: "x-request-id", want: true},
		{name: "contains", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: "original"}}, in: "x-original-uri", want: true},
		{name: "regex is a full match", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "x-.*-uri"}}}, in: "x-original-uri", want: true},
		{name: "regex is not a search", matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "original"}}}, in: "x-original-uri", want: false},
		{name: "nil matches nothing", matcher: nil, in: "x", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stringMatch(tt.matcher, tt.in); got != tt.want {
				t.Errorf("stringMatch(%v, %q) = %v, want %v", tt.matcher, tt.in, got, tt.want)
			}
		})
	}
}
