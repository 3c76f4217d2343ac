package deploy_test

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// traefikForwardAuth holds the ForwardAuth options the shipped file uses; decoding is
// strict, so any other (or misspelt) option is an error until it is added here.
type traefikForwardAuth struct {
	Address                  string   `json:"address"`
	TrustForwardHeader       *bool    `json:"trustForwardHeader"`
	AuthRequestHeaders       []string `json:"authRequestHeaders"`
	AuthResponseHeadersRegex string   `json:"authResponseHeadersRegex"`
	AuthResponseHeaders      []string `json:"authResponseHeaders"`
}

// traefikDynamic is the part of Traefik's dynamic configuration (file provider) we use.
type traefikDynamic struct {
	HTTP struct {
		Middlewares map[string]struct {
			ForwardAuth *traefikForwardAuth `json:"forwardAuth"`
		} `json:"middlewares"`
		Routers map[string]struct {
			Rule        string   `json:"rule"`
			EntryPoints []string `json:"entryPoints"`
			Middlewares []string `json:"middlewares"`
			Service     string   `json:"service"`
		} `json:"routers"`
		Services map[string]struct {
			LoadBalancer struct {
				Servers []struct {
					URL string `json:"url"`
				} `json:"servers"`
			} `json:"loadBalancer"`
		} `json:"services"`
	} `json:"http"`
}

// contractHTTPPort is agentos-authz's HTTP ext_authz port (contract §2).
const contractHTTPPort = "8181"

func decodeTraefik(data []byte) (*traefikDynamic, error) {
	var cfg traefikDynamic
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// checkTraefik checks the ForwardAuth settings against Traefik's behaviour
// (pkg/middlewares/auth/forward.go): which request headers reach agentos-authz, which
// reply headers reach AgentOS, and that every router goes through the check.
func checkTraefik(cfg *traefikDynamic) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	authMiddlewares := map[string]bool{}
	for name, m := range cfg.HTTP.Middlewares {
		fa := m.ForwardAuth
		if fa == nil {
			continue
		}
		authMiddlewares[name] = true
		where := "http.middlewares." + name + ".forwardAuth"
		u, err := url.Parse(fa.Address)
		switch {
		case err != nil:
			fail("%s.address %q: %v", where, fa.Address, err)
		case u.Scheme != "http" && u.Scheme != "https":
			fail("%s.address %q: want an http(s) URL", where, fa.Address)
		case u.Port() != contractHTTPPort:
			fail("%s.address %q: agentos-authz's HTTP ext_authz port is %s", where, fa.Address, contractHTTPPort)
		}
		// With trustForwardHeader, Traefik passes a client-sent X-Forwarded-Uri/-Method to
		// the check instead of the request's own: the caller picks the path that is checked.
		if fa.TrustForwardHeader == nil || *fa.TrustForwardHeader {
			fail("%s.trustForwardHeader must be set to false", where)
		}
		// Unset, every client header reaches the check, X-Original-URI included, which
		// agentos-authz would take as the checked path.
		if len(fa.AuthRequestHeaders) == 0 {
			fail("%s.authRequestHeaders must list the headers the check needs", where)
		}
		for _, h := range []string{"Authorization", "Cookie", "Origin"} {
			if !slices.ContainsFunc(fa.AuthRequestHeaders, func(s string) bool { return strings.EqualFold(s, h) }) {
				fail("%s.authRequestHeaders: %s is missing", where, h)
			}
		}
		for _, h := range spoofableHeaders {
			if slices.ContainsFunc(fa.AuthRequestHeaders, func(s string) bool { return strings.EqualFold(s, h) }) {
				fail("%s.authRequestHeaders: client-sent %s would name the checked request", where, h)
			}
		}
		if err := checkTraefikAuthorization(name, where, fa); err != nil {
			errs = append(errs, err)
		}
		re, err := regexp.Compile(fa.AuthResponseHeadersRegex)
		if fa.AuthResponseHeadersRegex == "" || err != nil {
			fail("%s.authResponseHeadersRegex %q: want a regex of the x-agentos-* headers (%v)", where, fa.AuthResponseHeadersRegex, err)
			continue
		}
		// Traefik matches canonical header keys (X-Agentos-User-Id) and first removes
		// every request header the regex matches, which clears client-sent ones.
		for _, h := range agentosHeaders {
			if !re.MatchString(http.CanonicalHeaderKey(h)) {
				fail("%s.authResponseHeadersRegex %q: %s would not reach AgentOS", where, re, http.CanonicalHeaderKey(h))
			}
		}
		// Contract §5: every client-sent x-agentos-* header is removed, names agentos-authz
		// never sets included, as Go canonicalises them and as sent.
		for _, h := range forgedAgentosHeaders {
			for _, name := range []string{http.CanonicalHeaderKey(h), h, strings.ToUpper(h)} {
				if !re.MatchString(name) {
					fail("%s.authResponseHeadersRegex %q: a client-sent %s would reach AgentOS", where, re, name)
				}
			}
		}
		for _, h := range []string{"Authorization", "Cookie", "Content-Type", "X-Forwarded-Uri", "X-Agentos", "X-Agentosfoo"} {
			if re.MatchString(h) {
				fail("%s.authResponseHeadersRegex %q: also matches %s", where, re, h)
			}
		}
	}
	if len(authMiddlewares) == 0 {
		fail("http.middlewares: no forwardAuth middleware")
	}
	if err := checkTraefikIdentityMiddleware(slices.Collect(maps.Keys(authMiddlewares))); err != nil {
		errs = append(errs, err)
	}
	if len(cfg.HTTP.Routers) == 0 {
		fail("http.routers: none")
	}
	for name, r := range cfg.HTTP.Routers {
		where := "http.routers." + name
		if !slices.ContainsFunc(r.Middlewares, func(m string) bool { return authMiddlewares[m] }) {
			fail("%s: no forwardAuth middleware: its requests would not be checked", where)
		}
		for _, m := range r.Middlewares {
			if _, ok := cfg.HTTP.Middlewares[m]; !ok && !strings.Contains(m, "@") {
				fail("%s: middleware %q is not defined", where, m)
			}
		}
		if _, ok := cfg.HTTP.Services[r.Service]; !ok && !strings.Contains(r.Service, "@") {
			fail("%s: service %q is not defined", where, r.Service)
		}
		if r.Rule == "" {
			fail("%s: no rule", where)
		}
	}
	for name, s := range cfg.HTTP.Services {
		if len(s.LoadBalancer.Servers) == 0 {
			fail("http.services.%s: no server", name)
		}
		for i, srv := range s.LoadBalancer.Servers {
			if u, err := url.Parse(srv.URL); err != nil || u.Host == "" {
				fail("http.services.%s.loadBalancer.servers[%d].url %q: not a URL", name, i, srv.URL)
			}
		}
	}
	return errors.Join(errs...)
}

func loadTraefik(data []byte) error {
	cfg, err := decodeTraefik(data)
	if err != nil {
		return err
	}
	return checkTraefik(cfg)
}

func TestTraefikForwardAuth(t *testing.T) {
	if err := loadTraefik(readDeployFile(t, "traefik/forwardauth.yaml")); err != nil {
		t.Errorf("traefik/forwardauth.yaml:\n%v", err)
	}
}

func TestTraefikValidatorsReject(t *testing.T) {
	conf := string(readDeployFile(t, "traefik/forwardauth.yaml"))
	tests := []struct {
		name    string
		mutate  func(t *testing.T, s string) string
		wantErr string
	}{
		{
			name: "misspelt option",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "trustForwardHeader:", "trustForwardHeaders:")
			},
			wantErr: `unknown field "trustForwardHeaders"`,
		},
		{
			name: "trusting the client's forward headers",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "trustForwardHeader: false", "trustForwardHeader: true")
			},
			wantErr: "trustForwardHeader must be set to false",
		},
		{
			name: "all client headers sent to the check",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "        authRequestHeaders:\n        - Authorization\n        - Cookie\n        - Origin\n        - X-Request-Id\n", "")
			},
			wantErr: "authRequestHeaders must list",
		},
		{
			name: "client may name the checked path",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "        - X-Request-Id\n", "        - X-Original-Uri\n")
			},
			wantErr: "client-sent x-original-uri",
		},
		{
			name: "identity token not copied",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "        authResponseHeaders:\n        - Authorization\n", "")
			},
			wantErr: "authResponseHeaders: Authorization is missing",
		},
		{
			name: "client's Authorization dropped without identity tokens",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "        trustForwardHeader: false\n", "        trustForwardHeader: false\n        authResponseHeaders: [Authorization]\n")
			},
			wantErr: "http.middlewares.agentos-authz.forwardAuth.authResponseHeaders: Authorization is listed",
		},
		{
			name: "no identity-token middleware",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "    agentos-authz-identity:\n", "    agentos-authz-other:\n")
			},
			wantErr: "no forwardAuth middleware named *-identity",
		},
		{
			name: "identity headers not copied",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "(?i)^x-agentos-", "^X-Agentos-User-Id$")
			},
			wantErr: "X-Agentos-Scopes would not reach AgentOS",
		},
		{
			name: "only the known names removed",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "(?i)^x-agentos-", "^X-Agentos-(User-Id|Session-Id|Scopes|Auth|Accessible-Ids|Claim-Email)$")
			},
			wantErr: "a client-sent X-Agentos-Foo would reach AgentOS",
		},
		{
			name:    "case-sensitive regex",
			mutate:  func(t *testing.T, s string) string { return replaceFirst(t, s, "(?i)^x-agentos-", "^X-Agentos-") },
			wantErr: "a client-sent x-agentos-foo would reach AgentOS",
		},
		{
			name:    "regex too wide",
			mutate:  func(t *testing.T, s string) string { return replaceFirst(t, s, "(?i)^x-agentos-", "X-") },
			wantErr: "also matches X-Forwarded-Uri",
		},
		{
			name: "wrong port",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "address: http://agentos-authz:8181", "address: http://agentos-authz:9191")
			},
			wantErr: "HTTP ext_authz port is 8181",
		},
		{
			name: "router without the check",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "      middlewares: [agentos-authz]\n", "")
			},
			wantErr: "no forwardAuth middleware: its requests would not be checked",
		},
		{
			name: "router to an undefined service",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "      service: agentos\n", "      service: agentos-api\n")
			},
			wantErr: `service "agentos-api" is not defined`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadTraefik([]byte(tt.mutate(t, conf)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadTraefik(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}
