package deploy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomize base (kustomize/base), its example overlay, and the plain ServiceMonitor
// (prometheus-operator/), built with kustomize's own Go API (krusty, what kubectl apply -k
// runs) and checked like the plain manifests.

const (
	kustomizeBase    = "kustomize/base"
	kustomizeExample = "kustomize/overlays/example"
	serviceMonitor   = "prometheus-operator/servicemonitor.yaml"
)

// kustomizeBuild runs `kustomize build dir` and strict-decodes what it prints.
func kustomizeBuild(dir string) ([]kubeObject, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, err
	}
	dec, err := newChartDecoder()
	if err != nil {
		return nil, err
	}
	return decodeKubernetes(dec, dir, out)
}

// kustomization is the part of a Kustomization file the tests read.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

func readKustomization(t *testing.T, file string) kustomization {
	t.Helper()
	var k kustomization
	if err := yaml.UnmarshalStrict(readDeployFile(t, file), &k); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", file, k.APIVersion, k.Kind)
	}
	return k
}

// objectKey names an object across renderings.
func objectKey(o kubeObject) string {
	return o.kind() + " " + o.namespace() + "/" + o.meta().GetName()
}

// sameObjects compares two sets of objects by kind, namespace and name, then field by field.
func sameObjects(want, got []kubeObject) error {
	index := func(objs []kubeObject) map[string]kubeObject {
		m := map[string]kubeObject{}
		for _, o := range objs {
			m[objectKey(o)] = o
		}
		return m
	}
	w, g := index(want), index(got)
	var errs []error
	for k, wo := range w {
		gobj, ok := g[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s is missing", k))
		case !reflect.DeepEqual(wo.obj, gobj.obj):
			errs = append(errs, fmt.Errorf("%s differs:\n want %s\n got  %s", k, jsonOf(wo.obj), jsonOf(gobj.obj)))
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			errs = append(errs, fmt.Errorf("%s is extra", k))
		}
	}
	return errors.Join(errs...)
}

// TestKustomizationListsEveryManifest: the plain directory's Kustomization lists exactly
// its *.yaml files, and the base points at that directory.
func TestKustomizationListsEveryManifest(t *testing.T) {
	k := readKustomization(t, filepath.Join(kubernetesDir, "Kustomization"))
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(kubernetesDir, r)); err != nil {
			t.Errorf("%s/Kustomization lists %s: %v", kubernetesDir, r, err)
		}
	}
	if got := slices.Sorted(slices.Values(k.Resources)); !slices.Equal(got, names) {
		t.Errorf("%s/Kustomization resources %v, want every manifest of the directory %v", kubernetesDir, got, names)
	}
	base := readKustomization(t, filepath.Join(kustomizeBase, "kustomization.yaml"))
	if !slices.Equal(base.Resources, []string{"../../kubernetes"}) {
		t.Errorf("%s resources %v, want [../../kubernetes]: the base is the plain manifests", kustomizeBase, base.Resources)
	}
}

// TestKustomizeBaseIsThePlainManifests: kustomize build of the base gives exactly the
// objects of envoy/deploy/kubernetes/.
func TestKustomizeBaseIsThePlainManifests(t *testing.T) {
	objs, err := kustomizeBuild(kustomizeBase)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameObjects(loadKubernetesObjects(t), objs); err != nil {
		t.Error(err)
	}
	if err := checkKubernetes(objs); err != nil {
		t.Error(err)
	}
}

// TestKustomizeExampleOverlay: the example overlay builds, passes every check of the plain
// manifests (GOMEMLIMIT kept at ~90% of the raised limit, the key a public key), and its
// ServiceMonitor finds the Service.
func TestKustomizeExampleOverlay(t *testing.T) {
	objs, err := kustomizeBuild(kustomizeExample)
	if err != nil {
		t.Fatal(err)
	}
	var k8s []kubeObject
	for _, o := range objs {
		if _, ok := o.obj.(*monitoringv1.ServiceMonitor); !ok {
			k8s = append(k8s, o)
		}
	}
	if err := checkKubernetes(k8s); err != nil {
		t.Error(err)
	}
	if err := checkServiceMonitors(objs); err != nil {
		t.Error(err)
	}
	if _, ok := find[*monitoringv1.ServiceMonitor](objs, "agentos-authz", "agentos-authz"); !ok {
		t.Error("the example overlay has no ServiceMonitor")
	}
	for _, p := range checkRollout(k8s) {
		t.Error(p)
	}
	d, _ := find[*appsv1.Deployment](objs, "agentos-authz", "agentos-authz")
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/platform/agentos-authz:0.1.0" {
		t.Errorf("image %q: the overlay's images transformer did not apply", img)
	}
	s, _ := find[*corev1.Secret](objs, "agentos-authz", "agentos-authz-keys")
	if s == nil || !strings.Contains(string(s.Data["jwt-public-key.pem"]), "BEGIN PUBLIC KEY") {
		t.Error("the overlay's Secret agentos-authz-keys does not hold jwt-public-key.pem")
	}
}

func loadServiceMonitor(t *testing.T, data []byte) ([]kubeObject, error) {
	t.Helper()
	dec, err := newChartDecoder()
	if err != nil {
		t.Fatal(err)
	}
	return decodeKubernetes(dec, filepath.Base(serviceMonitor), data)
}

// TestServiceMonitorManifest: the plain ServiceMonitor strict-decodes into the
// prometheus-operator types and scrapes the plain Service's admin port.
func TestServiceMonitorManifest(t *testing.T) {
	sm, err := loadServiceMonitor(t, readDeployFile(t, serviceMonitor))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkServiceMonitors(append(loadKubernetesObjects(t), sm...)); err != nil {
		t.Error(err)
	}
}

// TestServiceMonitorRejects: each mistake is caught, by strict decoding or by the checks.
func TestServiceMonitorRejects(t *testing.T) {
	orig := string(readDeployFile(t, serviceMonitor))
	tests := []struct {
		name     string
		old, new string
		wantErr  string
	}{
		{name: "unknown field", old: "    interval: 30s", new: "    intervall: 30s", wantErr: `unknown field "spec.endpoints[0].intervall"`},
		{name: "wrong type", old: "    matchNames: [agentos-authz]", new: "    matchNames: agentos-authz", wantErr: "matchNames"},
		{name: "selector matches no Service", old: "      app.kubernetes.io/component: ext-authz", new: "      app.kubernetes.io/component: authz", wantErr: "matches no Service"},
		{name: "namespace without the Service", old: "    matchNames: [agentos-authz]", new: "    matchNames: [monitoring]", wantErr: "matches no Service"},
		{name: "port not on the Service", old: "  - port: admin", new: "  - port: metrics", wantErr: `endpoints[0].port "metrics" is not a port`},
		{name: "wrong path", old: "    path: /metrics", new: "    path: /stats", wantErr: "must scrape port admin, path /metrics"},
		{name: "bad duration", old: "    scrapeTimeout: 10s", new: "    scrapeTimeout: 10 s", wantErr: `scrapeTimeout "10 s" is not a Prometheus duration`},
		{name: "bad scheme", old: "    scheme: http", new: "    scheme: grpc", wantErr: `scheme "grpc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm, err := loadServiceMonitor(t, []byte(mustReplace(t, orig, tt.old, tt.new)))
			if err == nil {
				err = checkServiceMonitors(append(loadKubernetesObjects(t), sm...))
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}
