package deploy_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

const kubernetesDir = "kubernetes"

// contractConfigKeys are the top-level keys of the configuration file: contract §4 plus the
// listener addresses of §2 and the log and http sections.
var contractConfigKeys = []string{
	"os_id", "authorization", "admin_scope", "unmapped_routes", "jwt", "scope_mappings",
	"excluded_routes", "cors_allowed_origins", "security_key", "security_key_migration",
	"grpc_addr", "http_addr", "admin_addr", "log", "http", "mode", "shutdown_delay",
	"interfaces", "tls", "upstream", "service_accounts",
}

// contractJWTKeys are the keys of the jwt section (contract §4).
var contractJWTKeys = []string{
	"verification_keys", "verification_key_files", "jwks_file", "jwks_url", "jwks_refresh", "algorithms", "algorithm",
	"issuer", "verify_audience", "audience", "leeway", "require_exp", "validate",
	"token_source", "header", "cookie", "claims", "forward_claims",
}

var contractClaimKeys = []string{"scopes", "user_id", "session_id", "audience"}

// kubeObject is one decoded document of a manifest file.
type kubeObject struct {
	file  string
	index int
	obj   runtime.Object
}

func (o kubeObject) meta() metav1.Object {
	m, _ := o.obj.(metav1.Object)
	if m == nil {
		return &metav1.ObjectMeta{}
	}
	return m
}

func (o kubeObject) namespace() string { return o.meta().GetNamespace() }

// kind is the object's Kubernetes kind: the name of its Go type in k8s.io/api.
func (o kubeObject) kind() string {
	t := reflect.TypeOf(o.obj)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

func (o kubeObject) id() string {
	return fmt.Sprintf("%s %s/%s (%s#%d)", o.kind(), o.namespace(), o.meta().GetName(), o.file, o.index)
}

// newKubeDecoder returns the strict decoder kube-apiserver applies to a create with
// fieldValidation=Strict: unknown and duplicate fields are errors, field names are
// case-sensitive, and kinds outside the registered groups are refused.
func newKubeDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(), nil
}

// decodeKubernetes decodes every document of one manifest file.
func decodeKubernetes(dec runtime.Decoder, file string, data []byte) ([]kubeObject, error) {
	var objs []kubeObject
	var errs []error
	docs := splitYAMLDocuments(data)
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no document", file)
	}
	for i, doc := range docs {
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s#%d: %w", file, i, err))
			continue
		}
		if gvk.Version == "" || gvk.Kind == "" {
			errs = append(errs, fmt.Errorf("%s#%d: apiVersion and kind are required", file, i))
			continue
		}
		objs = append(objs, kubeObject{file: file, index: i, obj: obj})
	}
	return objs, errors.Join(errs...)
}

// loadKubernetesObjects decodes every manifest under kubernetes/, freshly on each call so
// that a test may mutate what it gets.
func loadKubernetesObjects(t *testing.T) []kubeObject {
	t.Helper()
	dec, err := newKubeDecoder()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifest in %s/", kubernetesDir)
	}
	var objs []kubeObject
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeKubernetes(dec, filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, got...)
	}
	return objs
}

// podTemplateOf returns the pod template of a workload object, or nil.
func podTemplateOf(o kubeObject) *corev1.PodTemplateSpec {
	if d, ok := o.obj.(*appsv1.Deployment); ok {
		return &d.Spec.Template
	}
	return nil
}

// allKinds are the kinds the plain manifests must hold.
var allKinds = []string{"Namespace", "Deployment", "Service", "ConfigMap", "Secret",
	"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"}

// kubeEnv is what a set of manifests may rely on without defining it: the plain manifests
// define everything; a Helm release lives in a namespace made by `helm install
// --create-namespace` and may mount Secrets the operator creates (cert-manager's, say).
type kubeEnv struct {
	// namespaces exist in the cluster already.
	namespaces []string
	// secrets are "namespace/name" of Secrets made outside the manifests.
	secrets []string
	// kinds must each occur in the manifests.
	kinds []string
}

// checkKubernetes checks what strict decoding cannot: references between the objects,
// selectors against labels, ports, hardening, and the configuration they carry.
func checkKubernetes(objs []kubeObject) error {
	return checkKubernetesIn(objs, kubeEnv{kinds: allKinds})
}

// checkKubernetesIn is checkKubernetes for manifests that rely on env.
func checkKubernetesIn(objs []kubeObject, env kubeEnv) error {
	c := kubeChecker{objs: objs, env: env}
	c.checkNamespaces()
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			c.checkDeployment(o, v)
		case *corev1.Service:
			c.checkService(o, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			c.checkHPA(o, v)
		case *policyv1.PodDisruptionBudget:
			c.checkPDB(o, v)
		case *networkingv1.NetworkPolicy:
			c.checkNetworkPolicy(o, v)
		case *corev1.Secret:
			c.checkSecret(o, v)
		}
	}
	for _, kind := range env.kinds {
		if !slices.ContainsFunc(objs, func(o kubeObject) bool { return o.kind() == kind }) {
			c.fail("the manifests have no %s", kind)
		}
	}
	return errors.Join(c.errs...)
}

type kubeChecker struct {
	objs []kubeObject
	env  kubeEnv
	errs []error
}

func (c *kubeChecker) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// find returns the object of that Go type, namespace and name.
func find[T runtime.Object](objs []kubeObject, namespace, name string) (T, bool) {
	for _, o := range objs {
		if v, ok := o.obj.(T); ok && o.namespace() == namespace && o.meta().GetName() == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// podsSelectedBy returns the workloads of the namespace whose pod labels the selector matches.
func (c *kubeChecker) podsSelectedBy(namespace string, sel labels.Selector) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, o := range c.objs {
		d, ok := o.obj.(*appsv1.Deployment)
		if ok && o.namespace() == namespace && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func (c *kubeChecker) checkNamespaces() {
	defined := map[string]bool{}
	for _, ns := range c.env.namespaces {
		defined[ns] = true
	}
	for _, o := range c.objs {
		if _, ok := o.obj.(*corev1.Namespace); ok {
			defined[o.meta().GetName()] = true
		}
	}
	seen := map[string]string{}
	for _, o := range c.objs {
		key := o.kind() + " " + o.namespace() + "/" + o.meta().GetName()
		if prev, dup := seen[key]; dup {
			c.fail("%s: defined again (first in %s)", o.id(), prev)
		}
		seen[key] = o.file
		if _, ok := o.obj.(*corev1.Namespace); ok {
			continue
		}
		switch ns := o.namespace(); {
		case ns == "":
			c.fail("%s: metadata.namespace is required", o.id())
		case !defined[ns]:
			c.fail("%s: namespace %q is not defined in the manifests", o.id(), ns)
		}
	}
}

func (c *kubeChecker) checkDeployment(o kubeObject, d *appsv1.Deployment) {
	id := o.id()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	switch {
	case err != nil:
		c.fail("%s: spec.selector: %v", id, err)
	case d.Spec.Selector == nil || sel.Empty():
		c.fail("%s: spec.selector is empty", id)
	case !sel.Matches(labels.Set(d.Spec.Template.Labels)):
		c.fail("%s: spec.selector %s does not match the template labels %v", id, sel, d.Spec.Template.Labels)
	}
	// Without replicas, the HorizontalPodAutoscaler that targets the Deployment sets the count
	// (checkHPA wants its minReplicas at 2 or more).
	scaled := slices.ContainsFunc(c.objs, func(h kubeObject) bool {
		hpa, ok := h.obj.(*autoscalingv2.HorizontalPodAutoscaler)
		return ok && h.namespace() == o.namespace() && hpa.Spec.ScaleTargetRef.Kind == "Deployment" && hpa.Spec.ScaleTargetRef.Name == d.Name
	})
	if (d.Spec.Replicas == nil && !scaled) || (d.Spec.Replicas != nil && *d.Spec.Replicas < 2) {
		c.fail("%s: spec.replicas: want at least 2, every request depends on this service", id)
	}

	pod := d.Spec.Template.Spec
	ns := o.namespace()
	if sa := pod.ServiceAccountName; sa != "" && sa != "default" {
		if _, ok := find[*corev1.ServiceAccount](c.objs, ns, sa); !ok {
			c.fail("%s: serviceAccountName %q is not defined", id, sa)
		}
	}
	if len(pod.TopologySpreadConstraints) == 0 && (pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil) {
		c.fail("%s: replicas may land on one node: add topologySpreadConstraints or podAntiAffinity", id)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			c.checkKeys(id, "volume "+v.Name, ns, "ConfigMap", v.ConfigMap.Name, itemKeys(v.ConfigMap.Items), v.ConfigMap.Optional)
		case v.Secret != nil:
			c.checkKeys(id, "volume "+v.Name, ns, "Secret", v.Secret.SecretName, itemKeys(v.Secret.Items), v.Secret.Optional)
		}
	}
	if len(pod.Containers) == 0 {
		c.fail("%s: no container", id)
	}
	for _, ctr := range pod.Containers {
		where := fmt.Sprintf("%s container %q", id, ctr.Name)
		c.checkImage(where, ctr)
		c.checkResources(where, ctr.Resources)
		c.checkHardening(where, pod.SecurityContext, ctr.SecurityContext)
		c.checkProbes(where, ctr)
		c.checkEnv(where, ns, ctr.Env)
		for _, m := range ctr.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				c.fail("%s: volumeMount %q names no volume", where, m.Name)
			}
		}
		c.checkConfigFile(where, ns, ctr, volumes)
	}
}

func itemKeys(items []corev1.KeyToPath) []string {
	keys := make([]string, 0, len(items))
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	return keys
}

// checkKeys verifies that a referenced ConfigMap or Secret exists and holds the keys.
func (c *kubeChecker) checkKeys(where, what, namespace, kind, name string, keys []string, optional *bool) {
	if optional != nil && *optional {
		return
	}
	var have map[string]bool
	switch kind {
	case "ConfigMap":
		cm, ok := find[*corev1.ConfigMap](c.objs, namespace, name)
		if !ok {
			c.fail("%s: %s: ConfigMap %s/%s is not defined", where, what, namespace, name)
			return
		}
		have = map[string]bool{}
		for k := range cm.Data {
			have[k] = true
		}
		for k := range cm.BinaryData {
			have[k] = true
		}
	case "Secret":
		s, ok := find[*corev1.Secret](c.objs, namespace, name)
		if !ok && slices.Contains(c.env.secrets, namespace+"/"+name) {
			return
		}
		if !ok {
			c.fail("%s: %s: Secret %s/%s is not defined", where, what, namespace, name)
			return
		}
		have = map[string]bool{}
		for k := range s.Data {
			have[k] = true
		}
		for k := range s.StringData {
			have[k] = true
		}
	}
	for _, k := range keys {
		if !have[k] {
			c.fail("%s: %s: %s %s/%s has no key %q", where, what, kind, namespace, name, k)
		}
	}
}

var validPullPolicies = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}

func (c *kubeChecker) checkImage(where string, ctr corev1.Container) {
	if !slices.Contains(validPullPolicies, ctr.ImagePullPolicy) {
		c.fail("%s: imagePullPolicy %q: want one of %v", where, ctr.ImagePullPolicy, validPullPolicies)
	}
	img := ctr.Image
	lastPart := img[strings.LastIndex(img, "/")+1:]
	switch {
	case img == "":
		c.fail("%s: image is empty", where)
	case strings.Contains(img, "@sha256:"):
	case !strings.Contains(lastPart, ":"):
		c.fail("%s: image %q has no tag: it would mean :latest", where, img)
	case strings.HasSuffix(img, ":latest"):
		c.fail("%s: image %q: pin a version, not :latest", where, img)
	}
}

func (c *kubeChecker) checkResources(where string, r corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		if !hasReq {
			c.fail("%s: resources.requests.%s is not set", where, name)
		}
		if !hasLim {
			c.fail("%s: resources.limits.%s is not set", where, name)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			c.fail("%s: resources.requests.%s %s exceeds the limit %s", where, name, req.String(), lim.String())
		}
	}
}

// checkHardening checks the effective security context (the container's setting wins over
// the pod's) against the restricted Pod Security profile and this project's rules.
func (c *kubeChecker) checkHardening(where string, pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext) {
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if ctr == nil {
		ctr = &corev1.SecurityContext{}
	}
	runAsNonRoot := firstSet(ctr.RunAsNonRoot, pod.RunAsNonRoot)
	runAsUser := firstSet(ctr.RunAsUser, pod.RunAsUser)
	seccomp := ctr.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if runAsNonRoot == nil || !*runAsNonRoot {
		c.fail("%s: securityContext.runAsNonRoot must be true", where)
	}
	if runAsUser == nil || *runAsUser == 0 {
		c.fail("%s: securityContext.runAsUser must be a non-zero uid (the image's 65532)", where)
	}
	if ctr.ReadOnlyRootFilesystem == nil || !*ctr.ReadOnlyRootFilesystem {
		c.fail("%s: securityContext.readOnlyRootFilesystem must be true", where)
	}
	if ctr.AllowPrivilegeEscalation == nil || *ctr.AllowPrivilegeEscalation {
		c.fail("%s: securityContext.allowPrivilegeEscalation must be false", where)
	}
	if ctr.Privileged != nil && *ctr.Privileged {
		c.fail("%s: securityContext.privileged must not be true", where)
	}
	if ctr.Capabilities == nil || !slices.Contains(ctr.Capabilities.Drop, "ALL") {
		c.fail("%s: securityContext.capabilities.drop must contain ALL", where)
	} else if len(ctr.Capabilities.Add) > 0 {
		c.fail("%s: securityContext.capabilities.add %v: the service needs none", where, ctr.Capabilities.Add)
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		c.fail("%s: securityContext.seccompProfile.type must be RuntimeDefault (or Localhost)", where)
	}
}

func firstSet[T any](vs ...*T) *T {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

// containerHasPort reports whether a port (by name or number) is one of the container's.
func containerHasPort(ctr corev1.Container, p intstr.IntOrString) bool {
	for _, cp := range ctr.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return true
		}
	}
	return false
}

func podHasPort(d *appsv1.Deployment, p intstr.IntOrString) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(ctr corev1.Container) bool { return containerHasPort(ctr, p) })
}

func (c *kubeChecker) checkProbes(where string, ctr corev1.Container) {
	probes := []struct {
		name  string
		probe *corev1.Probe
	}{
		{name: "livenessProbe", probe: ctr.LivenessProbe},
		{name: "readinessProbe", probe: ctr.ReadinessProbe},
		{name: "startupProbe", probe: ctr.StartupProbe},
	}
	for _, p := range probes {
		if p.probe == nil {
			continue
		}
		var port intstr.IntOrString
		switch h := p.probe.ProbeHandler; {
		case h.HTTPGet != nil:
			port = h.HTTPGet.Port
		case h.GRPC != nil:
			port = intstr.FromInt32(h.GRPC.Port)
		case h.TCPSocket != nil:
			port = h.TCPSocket.Port
		default:
			c.fail("%s: %s has no httpGet, grpc or tcpSocket handler", where, p.name)
			continue
		}
		if !containerHasPort(ctr, port) {
			c.fail("%s: %s port %s is not a container port", where, p.name, port.String())
		}
	}
	// Contract §2: /healthz is liveness, /readyz readiness (or the gRPC health service).
	if l := ctr.LivenessProbe; l == nil || l.HTTPGet == nil || l.HTTPGet.Path != "/healthz" {
		c.fail("%s: livenessProbe must be httpGet /healthz on the admin port", where)
	}
	if r := ctr.ReadinessProbe; r == nil || ((r.HTTPGet == nil || r.HTTPGet.Path != "/readyz") && r.GRPC == nil) {
		c.fail("%s: readinessProbe must be httpGet /readyz on the admin port, or grpc", where)
	}
}

func (c *kubeChecker) checkEnv(where, namespace string, env []corev1.EnvVar) {
	for _, e := range env {
		if e.ValueFrom == nil {
			continue
		}
		if ref := e.ValueFrom.SecretKeyRef; ref != nil {
			c.checkKeys(where, "env "+e.Name, namespace, "Secret", ref.Name, []string{ref.Key}, ref.Optional)
		}
		if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
			c.checkKeys(where, "env "+e.Name, namespace, "ConfigMap", ref.Name, []string{ref.Key}, ref.Optional)
		}
	}
}

// checkConfigFile follows AUTHZ_CONFIG to the ConfigMap key mounted at that path and
// checks the configuration it holds.
func (c *kubeChecker) checkConfigFile(where, namespace string, ctr corev1.Container, volumes map[string]corev1.Volume) {
	i := slices.IndexFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == "AUTHZ_CONFIG" })
	if i < 0 || ctr.Env[i].Value == "" {
		c.fail("%s: env AUTHZ_CONFIG must name the configuration file", where)
		return
	}
	file := ctr.Env[i].Value
	for _, m := range ctr.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		v := volumes[m.Name]
		if v.ConfigMap == nil {
			c.fail("%s: AUTHZ_CONFIG %s is on volume %q, which is not a ConfigMap", where, file, m.Name)
			return
		}
		key := rel
		if len(v.ConfigMap.Items) > 0 {
			key = ""
			for _, it := range v.ConfigMap.Items {
				if path.Clean(it.Path) == rel {
					key = it.Key
				}
			}
		}
		cm, ok := find[*corev1.ConfigMap](c.objs, namespace, v.ConfigMap.Name)
		if !ok || key == "" || cm.Data[key] == "" {
			c.fail("%s: AUTHZ_CONFIG %s: ConfigMap %s/%s has no such file", where, file, namespace, v.ConfigMap.Name)
			return
		}
		for _, err := range checkAuthzConfig([]byte(cm.Data[key]), ctr) {
			c.fail("%s: ConfigMap %s/%s key %s: %v", where, namespace, cm.Name, key, err)
		}
		return
	}
	c.fail("%s: AUTHZ_CONFIG %s is under no volumeMount", where, file)
}

// checkAuthzConfig parses the configuration (duplicate keys refused), checks that it uses
// only the contract's keys, and that its listener addresses are the container's ports.
func checkAuthzConfig(data []byte, ctr corev1.Container) []error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return []error{fmt.Errorf("not valid YAML: %w", err)}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return []error{fmt.Errorf("not a YAML mapping: %w", err)}
	}
	var errs []error
	errs = append(errs, unknownKeys("", top, contractConfigKeys)...)
	if raw, ok := top["jwt"]; ok {
		var jwt map[string]json.RawMessage
		if err := json.Unmarshal(raw, &jwt); err != nil {
			errs = append(errs, fmt.Errorf("jwt: not a mapping: %w", err))
		}
		errs = append(errs, unknownKeys("jwt.", jwt, contractJWTKeys)...)
		if raw, ok := jwt["claims"]; ok {
			var claims map[string]json.RawMessage
			if err := json.Unmarshal(raw, &claims); err != nil {
				errs = append(errs, fmt.Errorf("jwt.claims: not a mapping: %w", err))
			}
			errs = append(errs, unknownKeys("jwt.claims.", claims, contractClaimKeys)...)
		}
	}
	for key, portName := range map[string]string{"grpc_addr": "grpc", "http_addr": "http", "admin_addr": "admin"} {
		raw, ok := top[key]
		if !ok {
			continue
		}
		var addr string
		if err := json.Unmarshal(raw, &addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a string", key))
			continue
		}
		_, port, err := net.SplitHostPort(addr)
		n, convErr := strconv.Atoi(port)
		if err != nil || convErr != nil {
			errs = append(errs, fmt.Errorf("%s %q: not host:port", key, addr))
			continue
		}
		if !containerHasPort(ctr, intstr.FromInt(n)) || !containerHasPort(ctr, intstr.FromString(portName)) ||
			!slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == portName && p.ContainerPort == int32(n) }) {
			errs = append(errs, fmt.Errorf("%s %q: the container port named %q is not %d", key, addr, portName, n))
		}
	}
	return errs
}

func unknownKeys(prefix string, m map[string]json.RawMessage, allowed []string) []error {
	var errs []error
	for k := range m {
		if !slices.Contains(allowed, k) {
			errs = append(errs, fmt.Errorf("%s%s: not a configuration field of the contract", prefix, k))
		}
	}
	return errs
}

func (c *kubeChecker) checkService(o kubeObject, s *corev1.Service) {
	id := o.id()
	if len(s.Spec.Selector) == 0 {
		c.fail("%s: spec.selector is empty", id)
		return
	}
	pods := c.podsSelectedBy(o.namespace(), labels.SelectorFromSet(s.Spec.Selector))
	if len(pods) == 0 {
		c.fail("%s: spec.selector %v matches no pod template in namespace %q", id, s.Spec.Selector, o.namespace())
		return
	}
	for _, sp := range s.Spec.Ports {
		target := sp.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(sp.Port)
		}
		for _, d := range pods {
			if !podHasPort(d, target) {
				c.fail("%s: port %q targetPort %s is not a port of Deployment %s", id, sp.Name, target.String(), d.Name)
			}
		}
	}
	// Contract §2 listeners; Istio and Envoy need the gRPC port declared as gRPC.
	want := []struct {
		port        int32
		appProtocol string
	}{{port: 9191, appProtocol: "grpc"}, {port: 8181, appProtocol: "http"}, {port: 9090, appProtocol: "http"}}
	for _, w := range want {
		i := slices.IndexFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Port == w.port })
		switch {
		case i < 0:
			c.fail("%s: no port %d", id, w.port)
		// https: the listeners serve TLS (the Helm chart's tls.enabled).
		case s.Spec.Ports[i].AppProtocol == nil || (*s.Spec.Ports[i].AppProtocol != w.appProtocol &&
			(w.appProtocol != "http" || *s.Spec.Ports[i].AppProtocol != "https")):
			c.fail("%s: port %d: appProtocol must be %s", id, w.port, w.appProtocol)
		}
	}
}

func (c *kubeChecker) checkHPA(o kubeObject, h *autoscalingv2.HorizontalPodAutoscaler) {
	id := o.id()
	ref := h.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" {
		c.fail("%s: scaleTargetRef %s %s: want apps/v1 Deployment", id, ref.APIVersion, ref.Kind)
		return
	}
	d, ok := find[*appsv1.Deployment](c.objs, o.namespace(), ref.Name)
	if !ok {
		c.fail("%s: scaleTargetRef: Deployment %s/%s is not defined", id, o.namespace(), ref.Name)
		return
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
		c.fail("%s: minReplicas: want at least 2", id)
	} else if *h.Spec.MinReplicas > h.Spec.MaxReplicas {
		c.fail("%s: minReplicas %d > maxReplicas %d", id, *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if len(h.Spec.Metrics) == 0 {
		c.fail("%s: no metrics", id)
	}
	// A utilization target is a percentage of the request: without one the HPA cannot scale.
	for _, m := range h.Spec.Metrics {
		if m.Resource == nil || m.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
			continue
		}
		for _, ctr := range d.Spec.Template.Spec.Containers {
			if _, ok := ctr.Resources.Requests[m.Resource.Name]; !ok {
				c.fail("%s: %s utilization needs resources.requests.%s on container %q", id, m.Resource.Name, m.Resource.Name, ctr.Name)
			}
		}
	}
}

func (c *kubeChecker) checkPDB(o kubeObject, p *policyv1.PodDisruptionBudget) {
	id := o.id()
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
	if err != nil || p.Spec.Selector == nil || sel.Empty() {
		c.fail("%s: spec.selector is missing or invalid (%v)", id, err)
		return
	}
	pods := c.podsSelectedBy(o.namespace(), sel)
	if len(pods) == 0 {
		c.fail("%s: spec.selector %s matches no pod template in namespace %q", id, sel, o.namespace())
		return
	}
	switch {
	case p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil:
		c.fail("%s: set minAvailable or maxUnavailable", id)
	case p.Spec.MinAvailable != nil && p.Spec.MinAvailable.Type == intstr.Int:
		for _, d := range pods {
			if d.Spec.Replicas != nil && p.Spec.MinAvailable.IntVal >= *d.Spec.Replicas {
				c.fail("%s: minAvailable %d >= replicas %d of %s: node drains would block forever", id, p.Spec.MinAvailable.IntVal, *d.Spec.Replicas, d.Name)
			}
		}
	}
}

func (c *kubeChecker) checkNetworkPolicy(o kubeObject, n *networkingv1.NetworkPolicy) {
	id := o.id()
	sel, err := metav1.LabelSelectorAsSelector(&n.Spec.PodSelector)
	if err != nil || sel.Empty() {
		c.fail("%s: podSelector is missing or invalid (%v)", id, err)
		return
	}
	pods := c.podsSelectedBy(o.namespace(), sel)
	if len(pods) == 0 {
		c.fail("%s: podSelector %s matches no pod template in namespace %q", id, sel, o.namespace())
		return
	}
	for _, t := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
		if !slices.Contains(n.Spec.PolicyTypes, t) {
			c.fail("%s: policyTypes must contain %s", id, t)
		}
	}
	for ri, rule := range n.Spec.Ingress {
		if len(rule.Ports) == 0 {
			c.fail("%s: ingress[%d] allows every port; name the ports", id, ri)
		}
		for _, p := range rule.Ports {
			if p.Port == nil {
				c.fail("%s: ingress[%d] has a rule without a port", id, ri)
				continue
			}
			for _, d := range pods {
				if !podHasPort(d, *p.Port) {
					c.fail("%s: ingress[%d] port %s is not a port of Deployment %s", id, ri, p.Port.String(), d.Name)
				}
			}
		}
	}
	allowsEgress := func(port int32, proto corev1.Protocol) bool {
		for _, rule := range n.Spec.Egress {
			for _, p := range rule.Ports {
				if p.Port != nil && p.Port.Type == intstr.Int && p.Port.IntVal == port && (p.Protocol == nil || *p.Protocol == proto) {
					return true
				}
			}
		}
		return false
	}
	if !allowsEgress(53, corev1.ProtocolUDP) {
		c.fail("%s: egress must allow DNS (53/UDP)", id)
	}
	if !allowsEgress(443, corev1.ProtocolTCP) {
		c.fail("%s: egress must allow HTTPS (443/TCP) for a remote JWKS", id)
	}
}

// checkSecret refuses private keys and checks that PEM blocks are public keys or certificates.
func (c *kubeChecker) checkSecret(o kubeObject, s *corev1.Secret) {
	values := map[string][]byte{}
	for k, v := range s.Data {
		values[k] = v
	}
	for k, v := range s.StringData {
		values[k] = []byte(v)
	}
	for k, v := range values {
		rest := v
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			switch {
			case strings.Contains(block.Type, "PRIVATE KEY"):
				c.fail("%s: key %q holds a %s: agentos-authz only verifies, ship public keys only", o.id(), k, block.Type)
			case block.Type == "PUBLIC KEY":
				if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
					c.fail("%s: key %q: PUBLIC KEY does not parse: %v", o.id(), k, err)
				}
			case block.Type == "CERTIFICATE":
				if _, err := x509.ParseCertificate(block.Bytes); err != nil {
					c.fail("%s: key %q: CERTIFICATE does not parse: %v", o.id(), k, err)
				}
			default:
				c.fail("%s: key %q: unexpected PEM block %q", o.id(), k, block.Type)
			}
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	if err := checkKubernetes(loadKubernetesObjects(t)); err != nil {
		t.Error(err)
	}
}

func TestKubernetesDecoderRejects(t *testing.T) {
	dec, err := newKubeDecoder()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{
			name:    "unknown field",
			doc:     "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: b}\nspec:\n  selectr: {app: a}\n",
			wantErr: `unknown field "spec.selectr"`,
		},
		{
			name:    "field name in the wrong case",
			doc:     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: b}\nData: {k: v}\n",
			wantErr: `unknown field "Data"`,
		},
		{
			name:    "duplicate field",
			doc:     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: b}\ndata: {k: v}\ndata: {k: w}\n",
			wantErr: `"data" already set`,
		},
		{
			name:    "unknown kind",
			doc:     "apiVersion: v1\nkind: Servic\nmetadata: {name: a}\n",
			wantErr: `no kind "Servic"`,
		},
		{
			name:    "group not registered",
			doc:     "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: a}\n",
			wantErr: "Middleware",
		},
		{
			name:    "wrong type",
			doc:     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: b}\nspec: {replicas: two}\n",
			wantErr: "replicas",
		},
		{
			name:    "no kind",
			doc:     "apiVersion: v1\nmetadata: {name: a}\n",
			wantErr: "'Kind' is missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeKubernetes(dec, "test.yaml", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeKubernetes(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestKubernetesChecksReject mutates the decoded manifests and expects checkKubernetes to
// name each problem.
func TestKubernetesChecksReject(t *testing.T) {
	deployment := func(objs []kubeObject) *appsv1.Deployment {
		d, _ := find[*appsv1.Deployment](objs, "agentos-authz", "agentos-authz")
		return d
	}
	container := func(objs []kubeObject) *corev1.Container {
		return &deployment(objs).Spec.Template.Spec.Containers[0]
	}
	tests := []struct {
		name    string
		mutate  func(objs []kubeObject)
		wantErr string
	}{
		{
			name: "Deployment selector does not match the template",
			mutate: func(objs []kubeObject) {
				deployment(objs).Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "authz"
			},
			wantErr: "does not match the template labels",
		},
		{
			name: "Service selector matches no pod",
			mutate: func(objs []kubeObject) {
				s, _ := find[*corev1.Service](objs, "agentos-authz", "agentos-authz")
				s.Spec.Selector["app.kubernetes.io/name"] = "authz"
			},
			wantErr: "matches no pod template",
		},
		{
			name: "Service targetPort not on the pod",
			mutate: func(objs []kubeObject) {
				s, _ := find[*corev1.Service](objs, "agentos-authz", "agentos-authz")
				s.Spec.Ports[0].TargetPort = intstr.FromString("grpcs")
			},
			wantErr: `targetPort grpcs is not a port`,
		},
		{
			name: "gRPC port without appProtocol",
			mutate: func(objs []kubeObject) {
				s, _ := find[*corev1.Service](objs, "agentos-authz", "agentos-authz")
				s.Spec.Ports[0].AppProtocol = nil
			},
			wantErr: "appProtocol must be grpc",
		},
		{
			name:    "probe port missing",
			mutate:  func(objs []kubeObject) { container(objs).LivenessProbe.HTTPGet.Port = intstr.FromString("metrics") },
			wantErr: "livenessProbe port metrics is not a container port",
		},
		{
			name:    "readiness on the wrong path",
			mutate:  func(objs []kubeObject) { container(objs).ReadinessProbe.HTTPGet.Path = "/healthz" },
			wantErr: "readinessProbe must be",
		},
		{
			name:    "invalid image pull policy",
			mutate:  func(objs []kubeObject) { container(objs).ImagePullPolicy = "Sometimes" },
			wantErr: `imagePullPolicy "Sometimes"`,
		},
		{
			name:    "image without a tag",
			mutate:  func(objs []kubeObject) { container(objs).Image = "registry.local:5000/agentos-authz" },
			wantErr: "has no tag",
		},
		{
			name: "root filesystem writable",
			mutate: func(objs []kubeObject) {
				f := false
				container(objs).SecurityContext.ReadOnlyRootFilesystem = &f
			},
			wantErr: "readOnlyRootFilesystem must be true",
		},
		{
			name: "privilege escalation allowed",
			mutate: func(objs []kubeObject) {
				container(objs).SecurityContext.AllowPrivilegeEscalation = nil
			},
			wantErr: "allowPrivilegeEscalation must be false",
		},
		{
			name: "may run as root",
			mutate: func(objs []kubeObject) {
				f := false
				container(objs).SecurityContext.RunAsNonRoot = &f
			},
			wantErr: "runAsNonRoot must be true",
		},
		{
			name: "capabilities kept",
			mutate: func(objs []kubeObject) {
				container(objs).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
			},
			wantErr: "drop must contain ALL",
		},
		{
			name: "no seccomp profile",
			mutate: func(objs []kubeObject) {
				container(objs).SecurityContext.SeccompProfile = nil
				deployment(objs).Spec.Template.Spec.SecurityContext.SeccompProfile = nil
			},
			wantErr: "seccompProfile",
		},
		{
			name:    "no memory limit",
			mutate:  func(objs []kubeObject) { delete(container(objs).Resources.Limits, corev1.ResourceMemory) },
			wantErr: "resources.limits.memory is not set",
		},
		{
			name: "secret key missing",
			mutate: func(objs []kubeObject) {
				s, _ := find[*corev1.Secret](objs, "agentos-authz", "agentos-authz-keys")
				s.StringData = map[string]string{"public.pem": s.StringData["jwt-public-key.pem"]}
			},
			wantErr: `has no key "jwt-public-key.pem"`,
		},
		{
			name: "private key in the secret",
			mutate: func(objs []kubeObject) {
				s, _ := find[*corev1.Secret](objs, "agentos-authz", "agentos-authz-keys")
				s.StringData["jwt-public-key.pem"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
			},
			wantErr: "ship public keys only",
		},
		{
			name: "AUTHZ_CONFIG points outside the ConfigMap",
			mutate: func(objs []kubeObject) {
				ctr := container(objs)
				i := slices.IndexFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == "AUTHZ_CONFIG" })
				ctr.Env[i].Value = "/etc/agentos-authz/authz.yaml"
			},
			wantErr: "has no such file",
		},
		{
			name: "config with a key outside the contract",
			mutate: func(objs []kubeObject) {
				cm, _ := find[*corev1.ConfigMap](objs, "agentos-authz", "agentos-authz-config")
				cm.Data["config.yaml"] += "listen_addr: \":9191\"\n"
			},
			wantErr: "listen_addr: not a configuration field of the contract",
		},
		{
			name: "config with a jwt key outside the contract",
			mutate: func(objs []kubeObject) {
				cm, _ := find[*corev1.ConfigMap](objs, "agentos-authz", "agentos-authz-config")
				cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], "  leeway: 10s\n", "  leeway: 10s\n  skew: 5s\n", 1)
			},
			wantErr: "jwt.skew",
		},
		{
			name: "config listening on another port than the container's",
			mutate: func(objs []kubeObject) {
				cm, _ := find[*corev1.ConfigMap](objs, "agentos-authz", "agentos-authz-config")
				cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], `admin_addr: ":9090"`, `admin_addr: ":9091"`, 1)
			},
			wantErr: `the container port named "admin" is not 9091`,
		},
		{
			name: "HPA targets a missing Deployment",
			mutate: func(objs []kubeObject) {
				h, _ := find[*autoscalingv2.HorizontalPodAutoscaler](objs, "agentos-authz", "agentos-authz")
				h.Spec.ScaleTargetRef.Name = "authz"
			},
			wantErr: "Deployment agentos-authz/authz is not defined",
		},
		{
			name: "HPA on CPU without a CPU request",
			mutate: func(objs []kubeObject) {
				delete(container(objs).Resources.Requests, corev1.ResourceCPU)
			},
			wantErr: "cpu utilization needs resources.requests.cpu",
		},
		{
			name: "PDB selects nothing",
			mutate: func(objs []kubeObject) {
				p, _ := find[*policyv1.PodDisruptionBudget](objs, "agentos-authz", "agentos-authz")
				p.Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "authz"
			},
			wantErr: "PodDisruptionBudget agentos-authz/agentos-authz (21-pdb.yaml#0): spec.selector",
		},
		{
			name: "PDB blocks every drain",
			mutate: func(objs []kubeObject) {
				p, _ := find[*policyv1.PodDisruptionBudget](objs, "agentos-authz", "agentos-authz")
				two := intstr.FromInt32(2)
				p.Spec.MinAvailable = &two
			},
			wantErr: "node drains would block",
		},
		{
			name: "NetworkPolicy port not on the pod",
			mutate: func(objs []kubeObject) {
				n, _ := find[*networkingv1.NetworkPolicy](objs, "agentos-authz", "agentos-authz")
				p := intstr.FromInt32(9192)
				n.Spec.Ingress[0].Ports[0].Port = &p
			},
			wantErr: "ingress[0] port 9192 is not a port",
		},
		{
			name: "NetworkPolicy without DNS",
			mutate: func(objs []kubeObject) {
				n, _ := find[*networkingv1.NetworkPolicy](objs, "agentos-authz", "agentos-authz")
				n.Spec.Egress = n.Spec.Egress[1:]
			},
			wantErr: "egress must allow DNS",
		},
		{
			name: "object in an undefined namespace",
			mutate: func(objs []kubeObject) {
				cm, _ := find[*corev1.ConfigMap](objs, "agentos-authz", "agentos-authz-config")
				cm.Namespace = "authz"
			},
			wantErr: `namespace "authz" is not defined`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := loadKubernetesObjects(t)
			tt.mutate(objs)
			err := checkKubernetes(objs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("checkKubernetes(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestKubernetesConfigLoads loads the ConfigMap's configuration with the environment the
// Deployment gives the container (the verification key from the Secret), through the
// service's own loader: the same check as `agentos-authz validate` in the pod.
func TestKubernetesConfigLoads(t *testing.T) {
	objs := loadKubernetesObjects(t)
	d, ok := find[*appsv1.Deployment](objs, "agentos-authz", "agentos-authz")
	if !ok {
		t.Fatal("no Deployment agentos-authz/agentos-authz")
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			s, ok := find[*corev1.Secret](objs, d.Namespace, e.ValueFrom.SecretKeyRef.Name)
			if !ok {
				t.Fatalf("env %s: Secret %s not found", e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
			v, ok := s.StringData[e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				v = string(s.Data[e.ValueFrom.SecretKeyRef.Key])
			}
			env[e.Name] = v
		}
	}
	cm, ok := find[*corev1.ConfigMap](objs, d.Namespace, "agentos-authz-config")
	if !ok {
		t.Fatal("no ConfigMap agentos-authz-config")
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, settings, err := serveconfig.Load([]byte(cm.Data["config.yaml"]), lookup, serveconfig.Flags{})
	if err != nil {
		t.Fatalf("serveconfig.Load(ConfigMap config.yaml, Deployment env) = %v", err)
	}
	if !cfg.AuthorizationEnabled() {
		t.Error("the shipped configuration does not enforce scopes")
	}
	for _, l := range []struct{ name, addr string }{{"grpc", settings.GRPCAddr}, {"http", settings.HTTPAddr}, {"admin", settings.AdminAddr}} {
		_, port, err := net.SplitHostPort(l.addr)
		n, convErr := strconv.Atoi(port)
		if err != nil || convErr != nil || !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == l.name && p.ContainerPort == int32(n) }) {
			t.Errorf("loaded %s address %q is not the container port named %q", l.name, l.addr, l.name)
		}
	}
}
