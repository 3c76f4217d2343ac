package deploy_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// Rollout and egress rules of the Kubernetes manifests (README "Operating in
// production"): the startup probe waits for readiness, GOMEMLIMIT is ~90% of
// the memory limit, the grace period covers shutdown_delay plus the drain,
// and the NetworkPolicy lets the pod reach the JWKS URL and the database the
// configuration names.

// defaultDrainTimeout is serve's --drain-timeout default (README, serve flags).
const defaultDrainTimeout = 20 * time.Second

// graceMargin is the least time left after delay + drain before SIGKILL.
const graceMargin = 3 * time.Second

// shippedConfig loads the ConfigMap's configuration with the Deployment's
// environment, as the pod does: authz's part and the serve process's own
// settings (internal/serveconfig).
func shippedConfig(objs []kubeObject) (*authz.Config, *serveconfig.Settings, *appsv1.Deployment, error) {
	d, ok := find[*appsv1.Deployment](objs, "agentos-authz", "agentos-authz")
	if !ok {
		return nil, nil, nil, fmt.Errorf("no Deployment agentos-authz/agentos-authz")
	}
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			s, ok := find[*corev1.Secret](objs, d.Namespace, e.ValueFrom.SecretKeyRef.Name)
			if !ok {
				return nil, nil, nil, fmt.Errorf("env %s: Secret %s not found", e.Name, e.ValueFrom.SecretKeyRef.Name)
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
		return nil, nil, nil, fmt.Errorf("no ConfigMap agentos-authz-config")
	}
	cfg, settings, err := serveconfig.Load([]byte(cm.Data["config.yaml"]), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, serveconfig.Flags{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("serveconfig.Load(ConfigMap config.yaml): %w", err)
	}
	return cfg, settings, d, nil
}

// goMemLimit parses a GOMEMLIMIT value (runtime/debug: a number of bytes
// with an optional B, KiB, MiB, GiB or TiB suffix).
func goMemLimit(v string) (int64, error) {
	m := regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`).FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("GOMEMLIMIT %q is not a byte count (e.g. 230MiB)", v)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	return n << shift, nil
}

// drainTimeout is the container's --drain-timeout, else serve's default.
func drainTimeout(args []string) (time.Duration, error) {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "--drain-timeout=")
		if !ok && a == "--drain-timeout" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			return time.ParseDuration(v)
		}
	}
	return defaultDrainTimeout, nil
}

// checkRollout returns the problems of the Deployment's rollout settings.
func checkRollout(objs []kubeObject) []string {
	_, settings, d, err := shippedConfig(objs)
	if err != nil {
		return []string{err.Error()}
	}
	return rolloutProblems(settings, d)
}

// rolloutProblems returns the problems of a Deployment's rollout settings, given the
// configuration its container loads.
func rolloutProblems(cfg *serveconfig.Settings, d *appsv1.Deployment) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ctr := d.Spec.Template.Spec.Containers[0]
	if p := ctr.StartupProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		bad("startupProbe must be httpGet /readyz (readiness: configuration and keys loaded); /healthz passes at once")
	}
	i := slices.IndexFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	limit, hasLimit := ctr.Resources.Limits[corev1.ResourceMemory]
	switch {
	case !hasLimit:
		bad("resources.limits.memory must be set (GOMEMLIMIT is sized from it)")
	case i < 0 || ctr.Env[i].ValueFrom != nil:
		bad("env GOMEMLIMIT must be a literal ~90%% of limits.memory %s (a resourceFieldRef gives 100%%: no room left)", limit.String())
	default:
		v, err := goMemLimit(ctr.Env[i].Value)
		if err != nil {
			bad("%v", err)
			break
		}
		if pct := float64(v) / float64(limit.Value()) * 100; pct < 85 || pct > 92 {
			bad("GOMEMLIMIT %s is %.1f%% of limits.memory %s, want ~90%% (85-92)", ctr.Env[i].Value, pct, limit.String())
		}
	}
	drain, err := drainTimeout(ctr.Args)
	if err != nil {
		bad("--drain-timeout: %v", err)
	}
	delay := cfg.ShutdownDelay.Duration
	if delay <= 0 {
		bad("shutdown_delay must be set in the ConfigMap: the pod must keep answering while its endpoint is removed")
	}
	grace := time.Duration(30) * time.Second
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if need := delay + drain + graceMargin; grace < need {
		bad("terminationGracePeriodSeconds %s must cover shutdown_delay %s + drain %s + %s margin = %s", grace, delay, drain, graceMargin, need)
	}
	return problems
}

// urlPort is the TCP port of a URL, by default its scheme's.
func urlPort(raw string) (int32, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return int32(n), err
	}
	switch u.Scheme {
	case "https":
		return 443, nil
	case "http":
		return 80, nil
	case "postgres", "postgresql":
		return 5432, nil
	}
	return 0, fmt.Errorf("%q: no port and no default for scheme %q", raw, u.Scheme)
}

// egressAllows reports whether some egress rule of n allows TCP port.
func egressAllows(n *networkingv1.NetworkPolicy, port int32) bool {
	for _, rule := range n.Spec.Egress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.Type == intstr.Int && p.Port.IntVal == port &&
				(p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
				return true
			}
		}
	}
	return false
}

// checkEgress returns the ports the configuration reaches that the
// NetworkPolicy does not allow: the JWKS URL's (jwt.jwks_url), and the
// PostgreSQL default 5432 for the service-account database.
func checkEgress(objs []kubeObject) []string {
	cfg, _, d, err := shippedConfig(objs)
	if err != nil {
		return []string{err.Error()}
	}
	n, ok := find[*networkingv1.NetworkPolicy](objs, d.Namespace, "agentos-authz")
	if !ok {
		return []string{"no NetworkPolicy agentos-authz"}
	}
	var problems []string
	if cfg.JWT.JWKSURL != "" {
		port, err := urlPort(cfg.JWT.JWKSURL)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("jwt.jwks_url: %v", err))
		case !egressAllows(n, port):
			problems = append(problems, fmt.Sprintf("egress must allow TCP %d for jwt.jwks_url", port))
		}
	}
	if !egressAllows(n, 5432) {
		problems = append(problems, "egress must allow TCP 5432 for the service-account database (PostgreSQL), or document its port")
	}
	return problems
}

func TestKubernetesRollout(t *testing.T) {
	objs := loadKubernetesObjects(t)
	for _, p := range checkRollout(objs) {
		t.Error(p)
	}
	for _, p := range checkEgress(objs) {
		t.Error(p)
	}
}

// TestKubernetesRolloutRejects: each rule catches the mistake it exists for.
func TestKubernetesRolloutRejects(t *testing.T) {
	replaceConfig := func(objs []kubeObject, old, repl string) {
		cm, _ := find[*corev1.ConfigMap](objs, "agentos-authz", "agentos-authz-config")
		cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], old, repl, 1)
	}
	ctr := func(objs []kubeObject) *corev1.Container {
		d, _ := find[*appsv1.Deployment](objs, "agentos-authz", "agentos-authz")
		return &d.Spec.Template.Spec.Containers[0]
	}
	tests := []struct {
		name    string
		mutate  func([]kubeObject)
		check   func([]kubeObject) []string
		wantErr string
	}{
		{name: "startup probe on /healthz", check: checkRollout, wantErr: "startupProbe must be httpGet /readyz",
			mutate: func(objs []kubeObject) { ctr(objs).StartupProbe.HTTPGet.Path = "/healthz" }},
		{name: "GOMEMLIMIT from the limit", check: checkRollout, wantErr: "a resourceFieldRef gives 100%",
			mutate: func(objs []kubeObject) {
				c := ctr(objs)
				i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
				c.Env[i] = corev1.EnvVar{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}}
			}},
		{name: "limit raised, GOMEMLIMIT forgotten", check: checkRollout, wantErr: "want ~90%",
			mutate: func(objs []kubeObject) {
				ctr(objs).Resources.Limits[corev1.ResourceMemory] = resource.MustParse("512Mi")
			}},
		{name: "no shutdown delay", check: checkRollout, wantErr: "shutdown_delay must be set",
			mutate: func(objs []kubeObject) { replaceConfig(objs, "shutdown_delay: 5s", "shutdown_delay: 0s") }},
		{name: "grace period shorter than delay and drain", check: checkRollout, wantErr: "must cover shutdown_delay",
			mutate: func(objs []kubeObject) { replaceConfig(objs, "shutdown_delay: 5s", "shutdown_delay: 15s") }},
		{name: "drain timeout raised", check: checkRollout, wantErr: "must cover shutdown_delay",
			mutate: func(objs []kubeObject) { ctr(objs).Args = []string{"--drain-timeout=60s"} }},
		{name: "JWKS on another port", check: checkEgress, wantErr: "egress must allow TCP 8443 for jwt.jwks_url",
			mutate: func(objs []kubeObject) {
				replaceConfig(objs, "jwt:\n", "jwt:\n  jwks_url: https://idp.example.com:8443/jwks\n")
			}},
		{name: "no database egress", check: checkEgress, wantErr: "TCP 5432",
			mutate: func(objs []kubeObject) {
				n, _ := find[*networkingv1.NetworkPolicy](objs, "agentos-authz", "agentos-authz")
				n.Spec.Egress = slices.DeleteFunc(n.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
					return slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port != nil && p.Port.IntVal == 5432 })
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := loadKubernetesObjects(t)
			tt.mutate(objs)
			problems := tt.check(objs)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.wantErr) }) {
				t.Errorf("%s: problems %q, want one containing %q", tt.name, problems, tt.wantErr)
			}
		})
	}
}
