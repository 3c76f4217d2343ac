package deploy_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
	"github.com/agentos-authz/agentos-authz/internal/testpki"
)

// The Helm chart (envoy/deploy/helm/agentos-authz) rendered with Helm's own Go SDK — the
// chart loader, values coalescing with the chart's values.schema.json, and the template
// engine in strict mode (a misspelt value is an error) — then every object strict-decoded
// like the plain manifests and put through the same checks, plus the chart's own.

const (
	chartDir = "helm/agentos-authz"
	// releaseName and releaseNamespace are what the README's command uses; the release name
	// contains the chart's name, so the objects are called agentos-authz like the plain ones.
	releaseName      = "agentos-authz"
	releaseNamespace = "agentos-authz"
	// kubeVersion is the cluster the chart is rendered for (Chart.yaml's kubeVersion is
	// checked against it, as helm install does).
	kubeVersion = "v1.33.0"
)

// newChartDecoder is newKubeDecoder with the prometheus-operator types
// (monitoring.coreos.com/v1) registered, strict as well.
func newChartDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(), nil
}

// rendered is one rendering of the chart.
type rendered struct {
	objs  []kubeObject
	notes string
}

// loadChart loads the chart directory as helm install does.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	return ch
}

// renderChart renders the chart with values over its defaults (as -f values.yaml), for
// the release agentos-authz in namespace agentos-authz. The error is Helm's: a values
// schema violation, a template's fail message, or a strict-decoding failure.
func renderChart(ch *chart.Chart, values map[string]any) (*rendered, error) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, err
	}
	if ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, kv.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion %s, not %s", ch.Metadata.KubeVersion, kv)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(ch, values, opts, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{Strict: true}.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	dec, err := newChartDecoder()
	if err != nil {
		return nil, err
	}
	r := &rendered{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(files)) {
		base := path.Base(name)
		switch {
		case base == "NOTES.txt":
			r.notes = files[name]
			continue
		case strings.HasPrefix(base, "_") || !strings.HasSuffix(base, ".yaml"):
			continue
		case !yamlHasContent(files[name]):
			continue // a toggle turned this template off
		}
		objs, err := decodeKubernetes(dec, strings.TrimPrefix(name, ch.Name()+"/"), []byte(files[name]))
		errs = append(errs, err)
		r.objs = append(r.objs, objs...)
	}
	return r, errors.Join(errs...)
}

// valuesOf parses a values file's text.
func valuesOf(t *testing.T, text string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(text))
	if err != nil {
		t.Fatalf("values %q: %v", text, err)
	}
	return v
}

// chartKinds are the kinds a rendering holds, in sorted order.
func chartKinds(objs []kubeObject) []string {
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.kind())
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

// mountedFiles lays out, under root, the files the Deployment's container sees from its
// ConfigMap and Secret volumes (Secrets found in objs, or given in external as
// "name/key" -> content for Secrets made outside the chart). It fails on a mount whose
// ConfigMap, Secret or key is missing, as kubelet would leave the pod pending.
func mountedFiles(root string, objs []kubeObject, d *appsv1.Deployment, external map[string]string) error {
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		v := volumes[m.Name]
		var data map[string]string
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			cm, ok := find[*corev1.ConfigMap](objs, d.Namespace, v.ConfigMap.Name)
			if !ok {
				return fmt.Errorf("volume %s: ConfigMap %s is not defined", m.Name, v.ConfigMap.Name)
			}
			data, items = cm.Data, v.ConfigMap.Items
		case v.Secret != nil:
			data = map[string]string{}
			if s, ok := find[*corev1.Secret](objs, d.Namespace, v.Secret.SecretName); ok {
				maps.Copy(data, s.StringData)
				for k, b := range s.Data {
					data[k] = string(b)
				}
			}
			for k, content := range external {
				if name, key, _ := strings.Cut(k, "/"); name == v.Secret.SecretName {
					data[key] = content
				}
			}
			items = v.Secret.Items
		default:
			return fmt.Errorf("volume %s: neither a ConfigMap nor a Secret", m.Name)
		}
		if len(items) == 0 {
			for k := range data {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			content, ok := data[it.Key]
			if !ok {
				return fmt.Errorf("volume %s: key %q is not in its ConfigMap or Secret", m.Name, it.Key)
			}
			file := filepath.Join(root, filepath.FromSlash(m.MountPath), filepath.FromSlash(it.Path))
			if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// chartConfig loads the rendered configuration file the way the pod does: the ConfigMap
// named by AUTHZ_CONFIG, its paths resolved in the files the volumes mount (laid out under
// a temporary root), the container's environment (a Secret's value for SERVICE_ACCOUNTS_DB_URL),
// through the service's own loader.
func chartConfig(t *testing.T, r *rendered, external map[string]string) (*authz.Config, *serveconfig.Settings, *appsv1.Deployment, error) {
	d, ok := find[*appsv1.Deployment](r.objs, releaseNamespace, releaseName)
	if !ok {
		return nil, nil, nil, errors.New("no Deployment agentos-authz/agentos-authz")
	}
	root := t.TempDir()
	if err := mountedFiles(root, r.objs, d, external); err != nil {
		return nil, nil, nil, err
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := external[ref.Name+"/"+ref.Key]
			if s, found := find[*corev1.Secret](r.objs, d.Namespace, ref.Name); found {
				v, ok = s.StringData[ref.Key]
			}
			if !ok {
				return nil, nil, nil, fmt.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		}
	}
	if env["AUTHZ_CONFIG"] == "" {
		return nil, nil, nil, errors.New("env AUTHZ_CONFIG is not set")
	}
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(env["AUTHZ_CONFIG"])))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("AUTHZ_CONFIG %s is in no mounted volume: %w", env["AUTHZ_CONFIG"], err)
	}
	// Every absolute path of the configuration is one of the pod's: read it under root.
	text := strings.ReplaceAll(string(data), ": /", ": "+filepath.ToSlash(root)+"/")
	text = strings.ReplaceAll(text, "- /", "- "+filepath.ToSlash(root)+"/")
	cfg, settings, err := serveconfig.Load([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, serveconfig.Flags{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("serveconfig.Load(rendered config.yaml): %w", err)
	}
	return cfg, settings, d, nil
}

// chartEnv is what a release relies on: its namespace (helm install --create-namespace)
// and the Secrets the values name but the chart does not create.
func chartEnv(values map[string]any, kinds ...string) kubeEnv {
	env := kubeEnv{namespaces: []string{releaseNamespace}, kinds: kinds}
	get := func(keys ...string) string {
		var cur any = values
		for _, k := range keys {
			m, ok := cur.(map[string]any)
			if !ok {
				return ""
			}
			cur = m[k]
		}
		s, _ := cur.(string)
		return s
	}
	for _, name := range []string{get("tls", "secretName"), get("tls", "clientCA", "secretName"), get("keys", "existingSecret"),
		get("serviceAccounts", "existingSecret"), get("serviceMonitor", "clientCertSecret")} {
		if name != "" && !slices.Contains(env.secrets, releaseNamespace+"/"+name) {
			env.secrets = append(env.secrets, releaseNamespace+"/"+name)
		}
	}
	return env
}

// chartEgressProblems: the NetworkPolicy lets the pod reach what its configuration names
// (the JWKS URL's port; the database port when SERVICE_ACCOUNTS_DB_URL is given).
func chartEgressProblems(objs []kubeObject, cfg *authz.Config, d *appsv1.Deployment, dbPort int32) []string {
	n, ok := find[*networkingv1.NetworkPolicy](objs, d.Namespace, d.Name)
	if !ok {
		return nil
	}
	var problems []string
	if cfg.JWT.JWKSURL != "" {
		port, err := urlPort(cfg.JWT.JWKSURL)
		if err != nil || !egressAllows(n, port) {
			problems = append(problems, fmt.Sprintf("egress must allow TCP %d for jwt.jwks_url (%v)", port, err))
		}
	}
	if slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "SERVICE_ACCOUNTS_DB_URL" }) &&
		!egressAllows(n, dbPort) {
		problems = append(problems, fmt.Sprintf("egress must allow TCP %d for the service-account database", dbPort))
	}
	return problems
}

// checkServiceMonitors checks each ServiceMonitor against the Services: its selector and
// namespaces find the Service, its endpoint names the admin port and /metrics, and its
// durations are Prometheus durations (the CRD's pattern on monitoringv1.Duration).
func checkServiceMonitors(objs []kubeObject) error {
	var errs []error
	for _, o := range objs {
		sm, ok := o.obj.(*monitoringv1.ServiceMonitor)
		if !ok {
			continue
		}
		id := o.id()
		namespaces := sm.Spec.NamespaceSelector.MatchNames
		if len(namespaces) == 0 && !sm.Spec.NamespaceSelector.Any {
			namespaces = []string{o.namespace()}
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: spec.selector: %v", id, err))
			continue
		}
		var svcs []*corev1.Service
		for _, so := range objs {
			if s, ok := so.obj.(*corev1.Service); ok && (sm.Spec.NamespaceSelector.Any || slices.Contains(namespaces, so.namespace())) && sel.Matches(labels.Set(s.Labels)) {
				svcs = append(svcs, s)
			}
		}
		if len(svcs) == 0 {
			errs = append(errs, fmt.Errorf("%s: selector %s in namespaces %v matches no Service", id, sel, namespaces))
		}
		if len(sm.Spec.Endpoints) == 0 {
			errs = append(errs, fmt.Errorf("%s: no endpoints", id))
		}
		for i, ep := range sm.Spec.Endpoints {
			for _, s := range svcs {
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					errs = append(errs, fmt.Errorf("%s: endpoints[%d].port %q is not a port of Service %s", id, i, ep.Port, s.Name))
				}
			}
			if ep.Port != "admin" || ep.Path != "/metrics" {
				errs = append(errs, fmt.Errorf("%s: endpoints[%d] must scrape port admin, path /metrics (contract §2), not %q %q", id, i, ep.Port, ep.Path))
			}
			for what, d := range map[string]monitoringv1.Duration{"interval": ep.Interval, "scrapeTimeout": ep.ScrapeTimeout} {
				if !prometheusDuration.MatchString(string(d)) {
					errs = append(errs, fmt.Errorf("%s: endpoints[%d].%s %q is not a Prometheus duration", id, i, what, d))
				}
			}
			if ep.Scheme != nil && *ep.Scheme != "http" && *ep.Scheme != "https" {
				errs = append(errs, fmt.Errorf("%s: endpoints[%d].scheme %q: want http or https", id, i, *ep.Scheme))
			}
		}
	}
	return errors.Join(errs...)
}

// prometheusDuration is the pattern of monitoringv1.Duration (its kubebuilder validation).
var prometheusDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

// configMap returns the agentos-authz-config ConfigMap's configuration as a generic map.
func configMap(t *testing.T, objs []kubeObject) map[string]any {
	t.Helper()
	cm, ok := find[*corev1.ConfigMap](objs, releaseNamespace, "agentos-authz-config")
	if !ok {
		t.Fatal("no ConfigMap agentos-authz-config")
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &m); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	return m
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// sameSpec reports, as a problem, a difference between the plain manifests' and the
// chart's value of one field.
func sameSpec(problems *[]string, what string, plain, chart any) {
	if !reflect.DeepEqual(plain, chart) {
		*problems = append(*problems, fmt.Sprintf("%s differs from the plain manifests:\n plain %s\n chart %s", what, jsonOf(plain), jsonOf(chart)))
	}
}

// defaultKinds are the kinds of a default rendering.
var defaultKinds = []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy",
	"PodDisruptionBudget", "Secret", "Service", "ServiceAccount"}

// checkRendering runs every check that applies to a rendering: the plain manifests'
// checks (with env), the ServiceMonitors, and the exact set of kinds.
func checkRendering(t *testing.T, r *rendered, env kubeEnv, kinds []string) {
	t.Helper()
	if err := checkKubernetesIn(r.objs, env); err != nil {
		t.Error(err)
	}
	if err := checkServiceMonitors(r.objs); err != nil {
		t.Error(err)
	}
	if got := chartKinds(r.objs); !slices.Equal(got, kinds) {
		t.Errorf("rendered kinds %v, want %v", got, kinds)
	}
	if !strings.Contains(r.notes, "agentos-authz.agentos-authz.svc.cluster.local:9191") {
		t.Errorf("NOTES.txt does not give the gRPC address:\n%s", r.notes)
	}
}

// checkLoads loads the rendered configuration as the pod would and checks the rollout
// and egress rules against it.
func checkLoads(t *testing.T, r *rendered, external map[string]string, dbPort int32) *authz.Config {
	t.Helper()
	cfg, settings, d, err := chartConfig(t, r, external)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rolloutProblems(settings, d) {
		t.Error(p)
	}
	for _, p := range chartEgressProblems(r.objs, cfg, d, dbPort) {
		t.Error(p)
	}
	return cfg
}

func deploymentOf(t *testing.T, objs []kubeObject) *appsv1.Deployment {
	t.Helper()
	d, ok := find[*appsv1.Deployment](objs, releaseNamespace, releaseName)
	if !ok {
		t.Fatal("no Deployment agentos-authz/agentos-authz")
	}
	return d
}

func envValue(ctr corev1.Container, name string) (corev1.EnvVar, bool) {
	i := slices.IndexFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	if i < 0 {
		return corev1.EnvVar{}, false
	}
	return ctr.Env[i], true
}

func TestHelmChartDefaults(t *testing.T) {
	ch := loadChart(t)
	r, err := renderChart(ch, nil)
	if err != nil {
		t.Fatalf("helm template with the default values: %v", err)
	}
	checkRendering(t, r, chartEnv(nil, defaultKinds...), defaultKinds)
	cfg := checkLoads(t, r, nil, 5432)
	if !cfg.AuthorizationEnabled() {
		t.Error("the default configuration does not enforce scopes")
	}
	if got := cfg.JWT.VerificationKeyFiles; !slices.Equal(got, []string{"/var/run/secrets/agentos-authz/keys/jwt-public-key.pem"}) && len(got) != 1 {
		t.Errorf("jwt.verification_key_files = %q, want the mounted jwt-public-key.pem", got)
	}
	ctr := deploymentOf(t, r.objs).Spec.Template.Spec.Containers[0]
	if e, _ := envValue(ctr, "GOMEMLIMIT"); e.Value != "230MiB" {
		t.Errorf("GOMEMLIMIT = %q, want 230MiB (90%% of 256Mi)", e.Value)
	}
	if _, ok := envValue(ctr, "SERVICE_ACCOUNTS_DB_URL"); ok {
		t.Error("SERVICE_ACCOUNTS_DB_URL is set although no service-account database is configured")
	}
}

// TestHelmChartMirrorsPlainManifests: the default rendering is the plain manifests,
// except for what a chart does differently on purpose (key files instead of
// JWT_VERIFICATION_KEY, the release labels, no Namespace object, the database egress only
// with service accounts on).
func TestHelmChartMirrorsPlainManifests(t *testing.T) {
	ch := loadChart(t)
	r, err := renderChart(ch, valuesOf(t, "serviceAccounts: {existingSecret: agno-db}\n"))
	if err != nil {
		t.Fatal(err)
	}
	plain := loadKubernetesObjects(t)
	var problems []string
	pd, cd := deploymentOf(t, plain), deploymentOf(t, r.objs)
	pc, cc := pd.Spec.Template.Spec.Containers[0], cd.Spec.Template.Spec.Containers[0]
	sameSpec(&problems, "image", pc.Image, cc.Image)
	sameSpec(&problems, "imagePullPolicy", pc.ImagePullPolicy, cc.ImagePullPolicy)
	sameSpec(&problems, "args", pc.Args, cc.Args)
	sameSpec(&problems, "ports", pc.Ports, cc.Ports)
	sameSpec(&problems, "livenessProbe", pc.LivenessProbe, cc.LivenessProbe)
	sameSpec(&problems, "readinessProbe", pc.ReadinessProbe, cc.ReadinessProbe)
	sameSpec(&problems, "startupProbe", pc.StartupProbe, cc.StartupProbe)
	sameSpec(&problems, "resources", pc.Resources, cc.Resources)
	sameSpec(&problems, "container securityContext", pc.SecurityContext, cc.SecurityContext)
	sameSpec(&problems, "pod securityContext", pd.Spec.Template.Spec.SecurityContext, cd.Spec.Template.Spec.SecurityContext)
	sameSpec(&problems, "terminationGracePeriodSeconds", pd.Spec.Template.Spec.TerminationGracePeriodSeconds, cd.Spec.Template.Spec.TerminationGracePeriodSeconds)
	sameSpec(&problems, "strategy", pd.Spec.Strategy, cd.Spec.Strategy)
	sameSpec(&problems, "revisionHistoryLimit", pd.Spec.RevisionHistoryLimit, cd.Spec.RevisionHistoryLimit)
	for _, name := range []string{"AUTHZ_CONFIG", "GOMEMLIMIT"} {
		pe, _ := envValue(pc, name)
		ce, _ := envValue(cc, name)
		sameSpec(&problems, "env "+name, pe, ce)
	}
	ps, _ := find[*corev1.Service](plain, releaseNamespace, releaseName)
	cs, _ := find[*corev1.Service](r.objs, releaseNamespace, releaseName)
	sameSpec(&problems, "Service ports", ps.Spec.Ports, cs.Spec.Ports)
	ph, _ := find[*autoscalingv2.HorizontalPodAutoscaler](plain, releaseNamespace, releaseName)
	chpa, _ := find[*autoscalingv2.HorizontalPodAutoscaler](r.objs, releaseNamespace, releaseName)
	sameSpec(&problems, "HorizontalPodAutoscaler spec", ph.Spec, chpa.Spec)
	pp, _ := find[*policyv1.PodDisruptionBudget](plain, releaseNamespace, releaseName)
	cp, _ := find[*policyv1.PodDisruptionBudget](r.objs, releaseNamespace, releaseName)
	sameSpec(&problems, "PodDisruptionBudget minAvailable", pp.Spec.MinAvailable, cp.Spec.MinAvailable)
	pn, _ := find[*networkingv1.NetworkPolicy](plain, releaseNamespace, releaseName)
	cn, _ := find[*networkingv1.NetworkPolicy](r.objs, releaseNamespace, releaseName)
	sameSpec(&problems, "NetworkPolicy ingress", pn.Spec.Ingress, cn.Spec.Ingress)
	sameSpec(&problems, "NetworkPolicy egress", pn.Spec.Egress, cn.Spec.Egress)
	sameSpec(&problems, "NetworkPolicy policyTypes", pn.Spec.PolicyTypes, cn.Spec.PolicyTypes)

	// The configuration: the same, but for the key files the chart lists.
	pcfg, ccfg := configMap(t, plain), configMap(t, r.objs)
	jwt, _ := ccfg["jwt"].(map[string]any)
	if files, _ := jwt["verification_key_files"].([]any); len(files) != 1 || files[0] != "/var/run/secrets/agentos-authz/keys/jwt-public-key.pem" {
		problems = append(problems, fmt.Sprintf("jwt.verification_key_files = %v, want the mounted jwt-public-key.pem", files))
	}
	delete(jwt, "verification_key_files")
	sameSpec(&problems, "config.yaml", pcfg, ccfg)
	// The key: the plain Secret's, now a file.
	pk, _ := find[*corev1.Secret](plain, releaseNamespace, "agentos-authz-keys")
	ck, _ := find[*corev1.Secret](r.objs, releaseNamespace, "agentos-authz-keys")
	if pk == nil || ck == nil {
		problems = append(problems, "the keys Secret agentos-authz-keys is missing")
	} else {
		sameSpec(&problems, "keys Secret", pk.StringData, ck.StringData)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// testPublicKeyPEM is the example public key the chart and the plain manifests ship.
func testPublicKeyPEM(t *testing.T) string {
	t.Helper()
	objs := loadKubernetesObjects(t)
	s, ok := find[*corev1.Secret](objs, releaseNamespace, "agentos-authz-keys")
	if !ok {
		t.Fatal("no Secret agentos-authz-keys")
	}
	return s.StringData["jwt-public-key.pem"]
}

// testJWKS is a JWK Set holding the RSA public key of pemKey.
func testJWKS(t *testing.T, pemKey string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		t.Fatal("the example public key is not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("the example public key is a %T, want RSA", k)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"issuer-2026","alg":"RS256","use":"sig","n":%q,"e":%q}]}`,
		b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes()))
}

// togglesOnValues turns every toggle on, with the TLS listeners when tls is true.
func togglesOnValues(tls bool) string {
	v := `
image: {repository: registry.example.com:5000/platform/agentos-authz, tag: 0.2.0, pullPolicy: Always}
imagePullSecrets: [{name: registry}]
autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 12, targetCPUUtilizationPercentage: 60}
podDisruptionBudget: {enabled: true, minAvailable: 2}
resources: {requests: {cpu: 200m, memory: 128Mi}, limits: {cpu: "2", memory: 1Gi}}
shutdownDelaySeconds: 10
drainTimeoutSeconds: 30
terminationGracePeriodSeconds: 45
config:
  mode: shadow
  jwt:
    jwks_url: https://idp.example.com:8443/.well-known/jwks.json
keys:
  files: null
  existingSecret: issuer-keys
  existingSecretFiles: [public.pem]
serviceAccounts:
  dbUrl: postgresql://authz_ro:secret@db.example.com:6432/agno
  databasePort: 6432
networkPolicy: {enabled: true, egressPorts: [443]}
serviceMonitor: {enabled: true, labels: {release: prometheus}, interval: 15s, scrapeTimeout: 5s}
podAnnotations: {example.com/team: platform}
priorityClassName: system-cluster-critical
`
	if tls {
		v += "tls: {enabled: true, secretName: agentos-authz-tls}\n"
	}
	return v
}

func TestHelmChartTogglesOn(t *testing.T) {
	ch := loadChart(t)
	kinds := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy",
		"PodDisruptionBudget", "Secret", "Service", "ServiceAccount", "ServiceMonitor"}
	pemKey := testPublicKeyPEM(t)
	external := map[string]string{"issuer-keys/public.pem": pemKey, "issuer-keys/jwks.json": testJWKS(t, pemKey)}

	t.Run("plaintext", func(t *testing.T) {
		values := valuesOf(t, togglesOnValues(false))
		r, err := renderChart(ch, values)
		if err != nil {
			t.Fatalf("helm template with every toggle on: %v", err)
		}
		checkRendering(t, r, chartEnv(values, kinds...), kinds)
		cfg := checkLoads(t, r, external, 6432)
		if cfg.Mode != authz.ModeShadow {
			t.Errorf("mode = %q, want shadow", cfg.Mode)
		}
		if !strings.Contains(r.notes, "WARNING: mode is shadow") {
			t.Error("NOTES.txt does not warn about shadow mode")
		}
		if len(cfg.JWT.VerificationKeyFiles) != 1 || !strings.HasSuffix(cfg.JWT.VerificationKeyFiles[0], "/var/run/secrets/agentos-authz/keys/public.pem") {
			t.Errorf("verification_key_files %q: want public.pem from the keys Secret", cfg.JWT.VerificationKeyFiles)
		}
		if !cfg.ServiceAccounts.Enabled() || cfg.ServiceAccounts.DBURL != "postgresql://authz_ro:secret@db.example.com:6432/agno" {
			t.Error("service accounts are not on with the dbUrl's database: SERVICE_ACCOUNTS_DB_URL did not reach the configuration")
		}
		n, _ := find[*networkingv1.NetworkPolicy](r.objs, releaseNamespace, releaseName)
		for _, port := range []int32{443, 8443, 6432} {
			if !egressAllows(n, port) {
				t.Errorf("egress does not allow TCP %d", port)
			}
		}
		if egressAllows(n, 5432) {
			t.Error("egress allows TCP 5432 although the database is on 6432")
		}
		d := deploymentOf(t, r.objs)
		if d.Spec.Replicas != nil {
			t.Errorf("replicas %d set although the HorizontalPodAutoscaler owns the count", *d.Spec.Replicas)
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		if e, _ := envValue(ctr, "GOMEMLIMIT"); e.Value != "921MiB" {
			t.Errorf("GOMEMLIMIT = %q, want 921MiB (90%% of 1Gi)", e.Value)
		}
		e, ok := envValue(ctr, "SERVICE_ACCOUNTS_DB_URL")
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Fatal("SERVICE_ACCOUNTS_DB_URL does not come from a Secret")
		}
		s, _ := find[*corev1.Secret](r.objs, releaseNamespace, e.ValueFrom.SecretKeyRef.Name)
		if s == nil || s.StringData[e.ValueFrom.SecretKeyRef.Key] != "postgresql://authz_ro:secret@db.example.com:6432/agno" {
			t.Errorf("SERVICE_ACCOUNTS_DB_URL: the Secret %s does not hold the dbUrl", e.ValueFrom.SecretKeyRef.Name)
		}
		cm, _ := find[*corev1.ConfigMap](r.objs, releaseNamespace, "agentos-authz-config")
		if strings.Contains(cm.Data["config.yaml"], "authz_ro") {
			t.Error("the database URL is in the ConfigMap")
		}
		if ctr.Image != "registry.example.com:5000/platform/agentos-authz:0.2.0" || ctr.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("image %s %s, want the values'", ctr.Image, ctr.ImagePullPolicy)
		}
		sm, ok := find[*monitoringv1.ServiceMonitor](r.objs, releaseNamespace, releaseName)
		if !ok || sm.Labels["release"] != "prometheus" || sm.Spec.Endpoints[0].Interval != "15s" {
			t.Errorf("ServiceMonitor %+v: want the values' labels and interval", sm)
		}
		if _, ok := d.Spec.Template.Annotations["prometheus.io/scrape"]; ok {
			t.Error("prometheus.io/scrape annotation kept beside the ServiceMonitor: Prometheus would scrape twice")
		}
	})

	t.Run("JWK Set file from the keys Secret", func(t *testing.T) {
		values := valuesOf(t, `
keys: {files: null, existingSecret: issuer-keys, existingSecretFiles: [public.pem, jwks.json], jwksFile: jwks.json}
`)
		r, err := renderChart(ch, values)
		if err != nil {
			t.Fatal(err)
		}
		// No Secret of the chart's: the keys are the operator's.
		kinds := slices.DeleteFunc(slices.Clone(defaultKinds), func(k string) bool { return k == "Secret" })
		checkRendering(t, r, chartEnv(values, kinds...), kinds)
		cfg := checkLoads(t, r, external, 5432)
		if len(cfg.JWT.VerificationKeyFiles) != 1 || !strings.HasSuffix(cfg.JWT.VerificationKeyFiles[0], "/var/run/secrets/agentos-authz/keys/public.pem") ||
			!strings.HasSuffix(cfg.JWT.JWKSFile, "/var/run/secrets/agentos-authz/keys/jwks.json") {
			t.Errorf("verification_key_files %q, jwks_file %q: want public.pem and jwks.json from the keys Secret", cfg.JWT.VerificationKeyFiles, cfg.JWT.JWKSFile)
		}
	})

	t.Run("tls", func(t *testing.T) {
		values := valuesOf(t, togglesOnValues(true))
		r, err := renderChart(ch, values)
		if err != nil {
			t.Fatalf("helm template with every toggle on and TLS: %v", err)
		}
		checkRendering(t, r, chartEnv(values, kinds...), kinds)
		// The configuration's tls files are the mounted Secret's keys.
		cfg := configMap(t, r.objs)
		tlsCfg, _ := cfg["tls"].(map[string]any)
		want := map[string]any{"cert_file": "/var/run/secrets/agentos-authz/tls/tls.crt", "key_file": "/var/run/secrets/agentos-authz/tls/tls.key"}
		if !reflect.DeepEqual(tlsCfg, want) {
			t.Errorf("config tls = %v, want %v", tlsCfg, want)
		}
		d := deploymentOf(t, r.objs)
		root := t.TempDir()
		if err := mountedFiles(root, r.objs, d, map[string]string{
			"issuer-keys/public.pem": "k", "issuer-keys/jwks.json": "{}",
			"agentos-authz-tls/tls.crt": "CERT", "agentos-authz-tls/tls.key": "KEY",
		}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"cert_file", "key_file"} {
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(want[f].(string)))); err != nil {
				t.Errorf("tls.%s is not a mounted file: %v", f, err)
			}
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		for name, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe, "startup": ctr.StartupProbe} {
			if p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
				t.Errorf("%s probe scheme %q, want HTTPS: the admin listener serves TLS", name, p.HTTPGet.Scheme)
			}
		}
		sm, _ := find[*monitoringv1.ServiceMonitor](r.objs, releaseNamespace, releaseName)
		ep := sm.Spec.Endpoints[0]
		if ep.Scheme == nil || *ep.Scheme != "https" || ep.TLSConfig == nil || ep.TLSConfig.CA.Secret == nil ||
			ep.TLSConfig.CA.Secret.Name != "agentos-authz-tls" || ep.TLSConfig.ServerName == nil ||
			*ep.TLSConfig.ServerName != "agentos-authz.agentos-authz.svc" {
			t.Errorf("ServiceMonitor endpoint %s: want https verified against the TLS Secret's CA for agentos-authz.agentos-authz.svc", jsonOf(ep))
		}
	})
}

// TestHelmChartMutualTLS: with tls.clientCA.enabled the chart mounts the client CA, sets
// tls.client_ca_file and tls.admin_client_auth: except_health_and_metrics (kubelet's HTTPS
// probes present no client certificate: README.md, "Operating in production"), keeps the
// probes on HTTPS paths that answer without one, and gives the ServiceMonitor the CA and,
// when asked, a client certificate. The rendered configuration is loaded by the service's
// own loader against real certificate files, as the pod would.
func TestHelmChartMutualTLS(t *testing.T) {
	ch := loadChart(t)
	ca := testpki.NewCA(t, "agentos-authz CA")
	server := ca.Server(t, "agentos-authz.agentos-authz.svc")
	clientCA := testpki.NewCA(t, "Envoy client CA")
	prometheus := ca.Client(t, "prometheus")
	pemKey := testPublicKeyPEM(t)
	kinds := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy",
		"PodDisruptionBudget", "Secret", "Service", "ServiceAccount", "ServiceMonitor"}

	tests := []struct {
		name   string
		values string
		// external are the Secrets made outside the chart, "name/key" -> content.
		external map[string]string
		// wantCA is the CA certificate the service must load as tls.client_ca_file.
		wantCA []byte
		// wantClientCert is the Secret of the ServiceMonitor's client certificate, "" for none.
		wantClientCert string
	}{
		{
			name:   "client CA in the TLS Secret, Prometheus without a client certificate",
			values: "tls: {enabled: true, secretName: agentos-authz-tls, clientCA: {enabled: true}}\n",
			external: map[string]string{
				"agentos-authz-tls/tls.crt": string(server.CertPEM), "agentos-authz-tls/tls.key": string(server.KeyPEM),
				"agentos-authz-tls/ca.crt": string(ca.PEM),
			},
			wantCA: ca.PEM,
		},
		{
			name: "client CA in its own Secret, Prometheus with a client certificate",
			values: "tls: {enabled: true, secretName: agentos-authz-tls, clientCA: {enabled: true, secretName: envoy-client-ca, key: envoy-ca.pem}}\n" +
				"serviceMonitor: {clientCertSecret: prometheus-client}\n",
			external: map[string]string{
				"agentos-authz-tls/tls.crt": string(server.CertPEM), "agentos-authz-tls/tls.key": string(server.KeyPEM),
				"agentos-authz-tls/ca.crt": string(ca.PEM), "envoy-client-ca/envoy-ca.pem": string(clientCA.PEM),
				"prometheus-client/tls.crt": string(prometheus.CertPEM), "prometheus-client/tls.key": string(prometheus.KeyPEM),
			},
			wantCA:         clientCA.PEM,
			wantClientCert: "prometheus-client",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := valuesOf(t, togglesOnValues(false))
			chartutil.CoalesceTables(values, valuesOf(t, tc.values))
			values["keys"] = map[string]any{"files": nil, "existingSecret": "issuer-keys", "existingSecretFiles": []any{"public.pem"}}
			r, err := renderChart(ch, values)
			if err != nil {
				t.Fatalf("helm template with mutual TLS: %v", err)
			}
			checkRendering(t, r, chartEnv(values, kinds...), kinds)
			external := map[string]string{"issuer-keys/public.pem": pemKey}
			maps.Copy(external, tc.external)
			checkLoads(t, r, external, 6432)
			_, settings, _, err := chartConfig(t, r, external)
			if err != nil {
				t.Fatal(err)
			}
			cfg := settings
			if !cfg.TLS.MutualTLS() || !cfg.TLS.AdminHealthAndMetricsOpen() {
				t.Errorf("tls = %+v: want mutual TLS with admin_client_auth %s", cfg.TLS, serveconfig.AdminClientAuthExceptHealthAndMetrics)
			}
			if !strings.HasSuffix(cfg.TLS.ClientCAFile, "/var/run/secrets/agentos-authz/client-ca/"+path.Base(cfg.TLS.ClientCAFile)) {
				t.Errorf("tls.client_ca_file %q: want the client-ca volume's file", cfg.TLS.ClientCAFile)
			}
			if got, err := os.ReadFile(cfg.TLS.ClientCAFile); err != nil || string(got) != string(tc.wantCA) {
				t.Errorf("tls.client_ca_file holds %q (%v), want the client CA", got, err)
			}
			if _, err := cfg.TLS.LoadKeyPair(); err != nil {
				t.Errorf("the mounted certificate does not load: %v", err)
			}

			ctr := deploymentOf(t, r.objs).Spec.Template.Spec.Containers[0]
			for name, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe, "startup": ctr.StartupProbe} {
				// The paths the admin listener answers without a client certificate
				// (README.md, tls.admin_client_auth).
				if p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || (p.HTTPGet.Path != "/healthz" && p.HTTPGet.Path != "/readyz") {
					t.Errorf("%s probe %s: want HTTPS GET of /healthz or /readyz", name, jsonOf(p.ProbeHandler))
				}
			}

			sm, ok := find[*monitoringv1.ServiceMonitor](r.objs, releaseNamespace, releaseName)
			if !ok {
				t.Fatal("no ServiceMonitor")
			}
			ep := sm.Spec.Endpoints[0]
			if ep.Scheme == nil || *ep.Scheme != "https" || ep.TLSConfig == nil || ep.TLSConfig.CA.Secret == nil ||
				ep.TLSConfig.CA.Secret.Name != "agentos-authz-tls" || ep.TLSConfig.CA.Secret.Key != "ca.crt" {
				t.Fatalf("ServiceMonitor endpoint %s: want https verified against the TLS Secret's ca.crt", jsonOf(ep))
			}
			cert, key := ep.TLSConfig.Cert.Secret, ep.TLSConfig.KeySecret
			switch {
			case tc.wantClientCert == "" && (cert != nil || key != nil):
				t.Errorf("ServiceMonitor tlsConfig %s: a client certificate although none was asked for", jsonOf(ep.TLSConfig))
			case tc.wantClientCert != "" && (cert == nil || key == nil || cert.Name != tc.wantClientCert || cert.Key != "tls.crt" ||
				key.Name != tc.wantClientCert || key.Key != "tls.key"):
				t.Errorf("ServiceMonitor tlsConfig %s: want the client certificate of Secret %s (tls.crt, tls.key)", jsonOf(ep.TLSConfig), tc.wantClientCert)
			}
		})
	}
}

func TestHelmChartTogglesOff(t *testing.T) {
	ch := loadChart(t)
	values := valuesOf(t, `
serviceAccount: {create: false}
autoscaling: {enabled: false}
podDisruptionBudget: {enabled: false}
networkPolicy: {enabled: false}
serviceMonitor: {enabled: false}
replicas: 3
`)
	r, err := renderChart(ch, values)
	if err != nil {
		t.Fatalf("helm template with every toggle off: %v", err)
	}
	kinds := []string{"ConfigMap", "Deployment", "Secret", "Service"}
	checkRendering(t, r, chartEnv(values, kinds...), kinds)
	checkLoads(t, r, nil, 5432)
	d := deploymentOf(t, r.objs)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3 without autoscaling", d.Spec.Replicas)
	}
	if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "default" {
		t.Errorf("serviceAccountName %q, want default when the chart creates none", sa)
	}
}

// TestHelmChartRejects: wrong values fail the render with a message that names the value,
// from values.schema.json (checked by Helm before rendering) or from the templates.
func TestHelmChartRejects(t *testing.T) {
	ch := loadChart(t)
	tests := []struct {
		name    string
		values  string
		wantErr []string
	}{
		{name: "image tag latest", values: "image: {tag: latest}", wantErr: []string{"values don't meet the specifications of the schema", "/image/tag"}},
		{name: "pull policy", values: "image: {pullPolicy: Sometimes}", wantErr: []string{"/image/pullPolicy"}},
		{name: "one replica", values: "replicas: 1", wantErr: []string{"/replicas", "minimum"}},
		{name: "misspelt value", values: "replica: 3", wantErr: []string{"additional properties 'replica' not allowed"}},
		{name: "config field outside the contract", values: "config: {listen_addr: ':9191'}", wantErr: []string{"/config", "listen_addr"}},
		{name: "config jwt field outside the contract", values: "config: {jwt: {skew: 5s}}", wantErr: []string{"/config/jwt", "skew"}},
		{name: "bad duration", values: "config: {jwt: {leeway: 10 seconds}}", wantErr: []string{"/config/jwt/leeway"}},
		{name: "mode", values: "config: {mode: audit}", wantErr: []string{"/config/mode"}},
		{name: "memory limit in bytes with a B", values: "resources: {limits: {memory: 256MB}}", wantErr: []string{"/resources/limits/memory"}},
		{name: "no memory limit", values: "resources: {limits: {memory: null}}", wantErr: []string{"/resources/limits", "memory"}},
		{name: "private key among the keys", values: "keys: {files: {signing.pem: \"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}}", wantErr: []string{"/keys/files/signing.pem"}},
		{name: "listener address in config", values: "config: {grpc_addr: ':9292'}", wantErr: []string{"config.grpc_addr is set by the chart: use the value ports.grpc"}},
		{name: "shutdown delay in config", values: "config: {shutdown_delay: 5s}", wantErr: []string{"config.shutdown_delay is set by the chart: use the value shutdownDelaySeconds"}},
		{name: "key files in config", values: "config: {jwt: {verification_key_files: [/k.pem]}}", wantErr: []string{"config.jwt.verification_key_files is set by the chart"}},
		{name: "grace period too short", values: "shutdownDelaySeconds: 15", wantErr: []string{"terminationGracePeriodSeconds 30 must cover shutdownDelaySeconds 15 + drainTimeoutSeconds 20 + 3s margin = 38"}},
		{name: "tls without a Secret", values: "tls: {enabled: true}", wantErr: []string{"tls.enabled needs tls.secretName"}},
		{name: "mutual TLS without TLS", values: "tls: {clientCA: {enabled: true}}", wantErr: []string{"tls.clientCA.enabled needs tls.enabled"}},
		{name: "client CA Secret name", values: "tls: {enabled: true, secretName: t, clientCA: {enabled: true, secretName: Client_CA}}", wantErr: []string{"/tls/clientCA/secretName"}},
		{name: "ServiceMonitor client certificate without mutual TLS", values: "tls: {enabled: true, secretName: t}\nserviceMonitor: {enabled: true, clientCertSecret: prometheus-client}",
			wantErr: []string{"serviceMonitor.clientCertSecret needs tls.clientCA.enabled"}},
		{name: "keys twice", values: "keys: {existingSecret: issuer-keys, existingSecretFiles: [a.pem]}", wantErr: []string{"keys.files and keys.existingSecret are both set", "keys.files=null"}},
		{name: "existing keys without file names", values: "keys: {files: null, existingSecret: issuer-keys}", wantErr: []string{"keys.existingSecret needs keys.existingSecretFiles"}},
		{name: "two JWK Sets", values: "keys: {files: null, existingSecret: k, existingSecretFiles: [jwks.json], jwksFile: jwks.json}\nconfig: {jwt: {jwks_url: 'https://idp.example.com/jwks'}}", wantErr: []string{"keys.jwksFile and config.jwt.jwks_url are both set"}},
		{name: "jwks file not in the Secret", values: "keys: {jwksFile: jwks.json}", wantErr: []string{`keys.jwksFile "jwks.json" is not one of the keys Secret's files`}},
		{name: "database URL twice", values: "serviceAccounts: {dbUrl: 'postgresql://db/agno', existingSecret: db}", wantErr: []string{"serviceAccounts.dbUrl and serviceAccounts.existingSecret are both set"}},
		{name: "database URL scheme", values: "serviceAccounts: {dbUrl: 'mysql://db/agno'}", wantErr: []string{"/serviceAccounts/dbUrl"}},
		{name: "PDB blocks drains", values: "podDisruptionBudget: {minAvailable: 2}", wantErr: []string{"podDisruptionBudget.minAvailable 2 >= the replica count 2"}},
		{name: "HPA bounds", values: "autoscaling: {minReplicas: 5, maxReplicas: 3}", wantErr: []string{"autoscaling.minReplicas 5 > autoscaling.maxReplicas 3"}},
		{name: "ServiceMonitor interval", values: "serviceMonitor: {enabled: true, interval: 30 seconds}", wantErr: []string{"/serviceMonitor/interval"}},
		{name: "port out of range", values: "ports: {grpc: 70000}", wantErr: []string{"/ports/grpc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderChart(ch, valuesOf(t, tt.values))
			if err == nil {
				t.Fatalf("values %q rendered, want an error containing %q", tt.values, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("values %q: error %q does not contain %q", tt.values, err, w)
				}
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestHelmChartSchemaKnowsTheContract: the schema's config properties are the contract's
// configuration keys (what kubernetes_test.go accepts) plus the sections the service reads
// that the plain manifests do not use, so that a new contract field cannot be refused by
// the chart unnoticed.
func TestHelmChartSchemaKnowsTheContract(t *testing.T) {
	ch := loadChart(t)
	var schema struct {
		Properties struct {
			Config struct {
				Properties map[string]struct {
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"properties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(ch.Schema, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	cfg := schema.Properties.Config.Properties
	for _, k := range contractConfigKeys {
		if _, ok := cfg[k]; !ok {
			t.Errorf("values.schema.json: config.%s (docs/CONTRACT.md §4) is not allowed", k)
		}
	}
	for _, k := range contractJWTKeys {
		if _, ok := cfg["jwt"].Properties[k]; !ok {
			t.Errorf("values.schema.json: config.jwt.%s (docs/CONTRACT.md §4) is not allowed", k)
		}
	}
}

// TestHelmReadmeValues renders the example values.yaml of README.md's Helm section, so
// that the documented example keeps working.
func TestHelmReadmeValues(t *testing.T) {
	readme := string(readDeployFile(t, "README.md"))
	_, section, ok := strings.Cut(readme, "\n## Helm\n")
	if !ok {
		t.Fatal("README.md has no Helm section")
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	block, _, closed := strings.Cut(block, "```")
	if !ok || !closed {
		t.Fatal("README.md's Helm section has no yaml block")
	}
	values := valuesOf(t, block)
	r, err := renderChart(loadChart(t), values)
	if err != nil {
		t.Fatalf("helm template with README.md's values: %v", err)
	}
	kinds := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy",
		"PodDisruptionBudget", "Service", "ServiceAccount", "ServiceMonitor"}
	checkRendering(t, r, chartEnv(values, kinds...), kinds)
	cfg := configMap(t, r.objs)
	if jwt, _ := cfg["jwt"].(map[string]any); jwt["jwks_url"] != "https://idp.example.com/.well-known/jwks.json" || jwt["verification_key_files"] != nil {
		t.Errorf("config jwt = %v: want the JWKS URL alone", jwt)
	}
}
