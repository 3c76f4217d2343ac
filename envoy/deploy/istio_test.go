package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// objectMeta is the part of a Kubernetes object's metadata the Istio files use.
type objectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// istioOperator is the envelope of mesh-config.yaml; its meshConfig is decoded by protojson.
type istioOperator struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	} `json:"spec"`
}

// istioResource is the envelope of an Istio custom resource; its spec is decoded by protojson.
type istioResource struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   objectMeta      `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
}

// authorizationPolicy is a decoded AuthorizationPolicy with the metadata the checks need.
type authorizationPolicy struct {
	meta objectMeta
	spec *securityv1beta1.AuthorizationPolicy
}

// decodeMeshConfig reads mesh-config.yaml. The envelope is decoded strictly into a small
// struct; the meshConfig itself with protojson, which, unlike encoding/json on istio.io/api
// types (whose JSON hooks ignore unknown fields), refuses any field MeshConfig does not have.
func decodeMeshConfig(data []byte) (*meshv1alpha1.MeshConfig, error) {
	var op istioOperator
	if err := yaml.UnmarshalStrict(data, &op); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if op.APIVersion != "install.istio.io/v1alpha1" || op.Kind != "IstioOperator" {
		return nil, fmt.Errorf("envelope: %s %s, want install.istio.io/v1alpha1 IstioOperator", op.APIVersion, op.Kind)
	}
	if len(op.Spec.MeshConfig) == 0 {
		return nil, errors.New("spec.meshConfig: missing")
	}
	var mesh meshv1alpha1.MeshConfig
	if err := protojson.Unmarshal(op.Spec.MeshConfig, &mesh); err != nil {
		return nil, fmt.Errorf("spec.meshConfig: %w", err)
	}
	return &mesh, nil
}

// decodeAuthorizationPolicy reads one AuthorizationPolicy document the same way.
func decodeAuthorizationPolicy(data []byte) (authorizationPolicy, error) {
	var res istioResource
	if err := yaml.UnmarshalStrict(data, &res); err != nil {
		return authorizationPolicy{}, fmt.Errorf("envelope: %w", err)
	}
	if res.Kind != "AuthorizationPolicy" {
		return authorizationPolicy{}, fmt.Errorf("kind %q, want AuthorizationPolicy", res.Kind)
	}
	if res.APIVersion != "security.istio.io/v1" && res.APIVersion != "security.istio.io/v1beta1" {
		return authorizationPolicy{}, fmt.Errorf("apiVersion %q, want security.istio.io/v1 (or v1beta1)", res.APIVersion)
	}
	if res.Metadata.Name == "" || res.Metadata.Namespace == "" {
		return authorizationPolicy{}, errors.New("metadata: name and namespace are required")
	}
	var spec securityv1beta1.AuthorizationPolicy
	if err := protojson.Unmarshal(res.Spec, &spec); err != nil {
		return authorizationPolicy{}, fmt.Errorf("%s/%s spec: %w", res.Metadata.Namespace, res.Metadata.Name, err)
	}
	return authorizationPolicy{meta: res.Metadata, spec: &spec}, nil
}

// checkIstio cross-checks the policy against the mesh config and the Kubernetes objects:
// what istiod would only notice at run time (a CUSTOM policy naming an unknown provider
// rejects every request), or not at all (a provider pointing at the wrong port).
func checkIstio(mesh *meshv1alpha1.MeshConfig, policy authorizationPolicy, k8s []kubeObject) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	providers := map[string]*meshv1alpha1.MeshConfig_ExtensionProvider{}
	for i, p := range mesh.GetExtensionProviders() {
		if _, dup := providers[p.GetName()]; dup {
			fail("meshConfig.extensionProviders[%d]: duplicate name %q", i, p.GetName())
		}
		providers[p.GetName()] = p
		if g := p.GetEnvoyExtAuthzGrpc(); g != nil {
			errs = append(errs, checkGRPCProvider(fmt.Sprintf("meshConfig.extensionProviders[%d](%s)", i, p.GetName()), g, k8s)...)
		}
	}

	spec := policy.spec
	where := fmt.Sprintf("AuthorizationPolicy %s/%s", policy.meta.Namespace, policy.meta.Name)
	if spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		fail("%s: action %s, want CUSTOM", where, spec.GetAction())
	}
	name := spec.GetProvider().GetName()
	p, ok := providers[name]
	switch {
	case name == "":
		fail("%s: a CUSTOM policy needs provider.name", where)
	case !ok:
		fail("%s: provider %q is not defined in meshConfig.extensionProviders", where, name)
	case p.GetEnvoyExtAuthzGrpc() == nil && p.GetEnvoyExtAuthzHttp() == nil:
		fail("%s: provider %q is not an ext_authz provider", where, name)
	}

	// No rules: a CUSTOM policy checks nothing. An empty rule matches every request, which
	// is what the deployment guide promises (agentos-authz handles exclusions itself).
	if !hasEmptyRule(spec.GetRules()) {
		fail("%s: rules must contain an empty rule ({}) so that every request is checked", where)
	}

	// Without a selector the policy applies to the whole namespace (or mesh, in the root
	// namespace), which would include agentos-authz itself if it ran there.
	sel := spec.GetSelector().GetMatchLabels()
	if len(sel) == 0 && len(spec.GetTargetRefs()) == 0 {
		fail("%s: no selector: it would apply to every workload of namespace %q", where, policy.meta.Namespace)
	}
	for _, o := range k8s {
		pod := podTemplateOf(o)
		if pod == nil || o.namespace() != policy.meta.Namespace || len(sel) == 0 {
			continue
		}
		if labels.SelectorFromSet(sel).Matches(labels.Set(pod.Labels)) {
			fail("%s: selector %v matches the agentos-authz pods of %s: the check would call itself", where, sel, o.id())
		}
	}
	return errors.Join(errs...)
}

func checkGRPCProvider(where string, g *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider, k8s []kubeObject) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+": "+format, args...)) }
	if g.GetFailOpen() {
		fail("failOpen must be false: an unreachable agentos-authz would let every request through")
	}
	if d := g.GetTimeout(); d == nil || d.AsDuration() <= 0 || d.AsDuration() > maxCheckTimeout {
		fail("timeout %v: want a check timeout in (0, %s]", d.AsDuration(), maxCheckTimeout)
	}
	svcName, ns, ok := serviceFromHost(g.GetService())
	if !ok {
		fail("service %q: want <name>.<namespace>.svc.cluster.local", g.GetService())
		return errs
	}
	var svc *corev1.Service
	for _, o := range k8s {
		if s, ok := o.obj.(*corev1.Service); ok && s.Name == svcName && s.Namespace == ns {
			svc = s
		}
	}
	if svc == nil {
		fail("service %q: no Service %s/%s in the Kubernetes manifests", g.GetService(), ns, svcName)
		return errs
	}
	for _, sp := range svc.Spec.Ports {
		if uint32(sp.Port) != g.GetPort() {
			continue
		}
		if sp.AppProtocol == nil || *sp.AppProtocol != "grpc" {
			fail("port %d: Service port %q must have appProtocol grpc, or Istio treats it as plain TCP", sp.Port, sp.Name)
		}
		return errs
	}
	fail("port %d: Service %s/%s has no such port", g.GetPort(), ns, svcName)
	return errs
}

// serviceFromHost splits "name.namespace.svc.cluster.local" (or "name.namespace.svc").
func serviceFromHost(host string) (name, namespace string, ok bool) {
	parts := strings.Split(host, ".")
	if len(parts) < 3 || parts[2] != "svc" || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	if rest := strings.Join(parts[3:], "."); rest != "" && rest != "cluster.local" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

func hasEmptyRule(rules []*securityv1beta1.Rule) bool {
	for _, r := range rules {
		if len(r.GetFrom()) == 0 && len(r.GetTo()) == 0 && len(r.GetWhen()) == 0 {
			return true
		}
	}
	return false
}

func loadIstio(t *testing.T, meshYAML, policyYAML []byte) error {
	t.Helper()
	mesh, err := decodeMeshConfig(meshYAML)
	if err != nil {
		return fmt.Errorf("mesh-config.yaml: %w", err)
	}
	var errs []error
	docs := splitYAMLDocuments(policyYAML)
	if len(docs) == 0 {
		return errors.New("authorization-policy.yaml: no document")
	}
	k8s := loadKubernetesObjects(t)
	for i, doc := range docs {
		policy, err := decodeAuthorizationPolicy(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("authorization-policy.yaml document %d: %w", i, err))
			continue
		}
		errs = append(errs, checkIstio(mesh, policy, k8s))
	}
	return errors.Join(errs...)
}

func TestIstio(t *testing.T) {
	if err := loadIstio(t, readDeployFile(t, "istio/mesh-config.yaml"), readDeployFile(t, "istio/authorization-policy.yaml")); err != nil {
		t.Error(err)
	}
}

func TestIstioValidatorsReject(t *testing.T) {
	meshYAML := string(readDeployFile(t, "istio/mesh-config.yaml"))
	policyYAML := string(readDeployFile(t, "istio/authorization-policy.yaml"))
	tests := []struct {
		name       string
		meshEdit   func(t *testing.T, s string) string
		policyEdit func(t *testing.T, s string) string
		wantErr    string
	}{
		{
			name: "unknown field in the provider",
			meshEdit: func(t *testing.T, s string) string {
				return mustReplace(t, s, "failOpen: false", "failOpen: false\n        failClosed: true")
			},
			wantErr: `unknown field "failClosed"`,
		},
		{
			name: "unknown envelope field",
			meshEdit: func(t *testing.T, s string) string {
				return mustReplace(t, s, "spec:\n", "spec:\n  profile: default\n")
			},
			wantErr: `unknown field "profile"`,
		},
		{
			name: "unknown field in the policy spec",
			policyEdit: func(t *testing.T, s string) string {
				return mustReplace(t, s, "action: CUSTOM", "action: CUSTOM\n  actions: [CUSTOM]")
			},
			wantErr: `unknown field "actions"`,
		},
		{
			name:       "unknown action",
			policyEdit: func(t *testing.T, s string) string { return mustReplace(t, s, "action: CUSTOM", "action: EXTERNAL") },
			wantErr:    "EXTERNAL",
		},
		{
			name: "CUSTOM policy naming an undefined provider",
			policyEdit: func(t *testing.T, s string) string {
				return mustReplace(t, s, "name: agentos-authz\n", "name: agentos-authz-grpc\n")
			},
			wantErr: `provider "agentos-authz-grpc" is not defined`,
		},
		{
			name:       "policy that is not CUSTOM",
			policyEdit: func(t *testing.T, s string) string { return mustReplace(t, s, "action: CUSTOM", "action: ALLOW") },
			wantErr:    "want CUSTOM",
		},
		{
			name:       "CUSTOM policy without rules checks nothing",
			policyEdit: func(t *testing.T, s string) string { return mustReplace(t, s, "  rules:\n  - {}\n", "") },
			wantErr:    "empty rule",
		},
		{
			name:     "provider port not on the Service",
			meshEdit: func(t *testing.T, s string) string { return mustReplace(t, s, "port: 9191", "port: 9000") },
			wantErr:  "Service agentos-authz/agentos-authz has no such port",
		},
		{
			name: "provider service not in the manifests",
			meshEdit: func(t *testing.T, s string) string {
				return mustReplace(t, s, "agentos-authz.agentos-authz.svc", "authz.agentos-authz.svc")
			},
			wantErr: "no Service agentos-authz/authz",
		},
		{
			name:     "fail open",
			meshEdit: func(t *testing.T, s string) string { return mustReplace(t, s, "failOpen: false", "failOpen: true") },
			wantErr:  "failOpen must be false",
		},
		{
			name:     "no timeout",
			meshEdit: func(t *testing.T, s string) string { return mustReplace(t, s, "        timeout: 0.5s\n", "") },
			wantErr:  "want a check timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, p := meshYAML, policyYAML
			if tt.meshEdit != nil {
				m = tt.meshEdit(t, m)
			}
			if tt.policyEdit != nil {
				p = tt.policyEdit(t, p)
			}
			err := loadIstio(t, []byte(m), []byte(p))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadIstio(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestIstioSelectorMustNotCatchAuthz proves the self-selection check: a policy deployed in
// agentos-authz's namespace whose selector matches its pods is refused.
func TestIstioSelectorMustNotCatchAuthz(t *testing.T) {
	p := string(readDeployFile(t, "istio/authorization-policy.yaml"))
	p = mustReplace(t, p, "namespace: agentos\n", "namespace: agentos-authz\n")
	p = mustReplace(t, p, "app.kubernetes.io/name: agentos\n", "app.kubernetes.io/name: agentos-authz\n")
	err := loadIstio(t, readDeployFile(t, "istio/mesh-config.yaml"), []byte(p))
	if err == nil || !strings.Contains(err.Error(), "the check would call itself") {
		t.Errorf("loadIstio(policy selecting agentos-authz) = %v, want the self-selection refused", err)
	}
}

func TestServiceFromHost(t *testing.T) {
	tests := []struct {
		host     string
		name, ns string
		ok       bool
	}{
		{host: "agentos-authz.agentos-authz.svc.cluster.local", name: "agentos-authz", ns: "agentos-authz", ok: true},
		{host: "authz.ns.svc", name: "authz", ns: "ns", ok: true},
		{host: "authz.ns", ok: false},
		{host: "authz.ns.svc.example.org", ok: false},
		{host: ".ns.svc.cluster.local", ok: false},
	}
	for _, tt := range tests {
		name, ns, ok := serviceFromHost(tt.host)
		if name != tt.name || ns != tt.ns || ok != tt.ok {
			t.Errorf("serviceFromHost(%q) = %q, %q, %v, want %q, %q, %v", tt.host, name, ns, ok, tt.name, tt.ns, tt.ok)
		}
	}
}
