package authz

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/scopes"
)

// env is a lookupEnv over a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

const hsKey = "test-hmac-secret-0123456789abcdef0123456789"

// TestLoadErrors: each configuration snippet must fail, and the error must
// name every wanted field (STYLE §4).
func TestLoadErrors(t *testing.T) {
	jwt := "jwt:\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error, each required
	}{
		{name: "nothing", yaml: "", want: []string{"no credential source", "OS_SECURITY_KEY", "JWT_VERIFICATION_KEY"}},
		{name: "authorization without jwt", yaml: "authorization: true\n", env: map[string]string{envSecurityKey: "k"},
			want: []string{"authorization: true needs a JWT source"}},
		{name: "jwt and key", yaml: jwt, env: map[string]string{envSecurityKey: "k"},
			want: []string{"security_key: OS_SECURITY_KEY", "security_key_migration: true", "1)", "2)", "3) unset OS_SECURITY_KEY"}},
		{name: "jwt env and key env", yaml: "", env: map[string]string{envVerificationKey: hsKey, envSecurityKey: "k"},
			want: []string{"OS_SECURITY_KEY"}},
		{name: "unknown top field", yaml: jwt + "colour: blue\n", want: []string{"colour: unknown field (line 4)"}},
		{name: "mapping key trailing slash", yaml: jwt + "scope_mappings: {\"DELETE /danger/\": [agent_os:admin]}\n",
			want: []string{`scope_mappings["DELETE /danger/"]: the path is not in normal form`, `write "DELETE /danger"`}},
		{name: "mapping key escape", yaml: jwt + "scope_mappings: {\"GET /a%20b/*\": []}\n",
			want: []string{`scope_mappings["GET /a%20b/*"]`, `write "GET /a b/*"`}},
		{name: "mapping key dot segment", yaml: jwt + "scope_mappings: {\"GET /a/../config\": [], \"GET /a//b\": []}\n",
			want: []string{`scope_mappings["GET /a/../config"]: the path has a dot segment ("..")`, `scope_mappings["GET /a//b"]: the path has an empty segment`}},
		{name: "key file missing", yaml: "jwt:\n  algorithms: [HS256]\n  verification_key_files: [/nonexistent/hs.secret]\n",
			want: []string{"jwt.verification_key_files[0]: cannot read /nonexistent/hs.secret"}},
		{name: "short secret", yaml: "jwt:\n  algorithms: [HS256]\n  verification_keys: [short-secret]\n",
			want: []string{"jwt.verification_keys[0]: the HMAC secret is 12 bytes, shorter than the 32", "allow_short_hmac_secrets"}},
		{name: "interface type", yaml: jwt + "interfaces: [{type: mcp}]\n", want: []string{"interfaces[0].type: \"mcp\" is not an AgentOS interface"}},
		{name: "agui without family", yaml: jwt + "interfaces: [{type: agui}]\n", want: []string{"interfaces[0].family: agui needs"}},
		{name: "interface prefix not normal", yaml: jwt + "interfaces: [{type: a2a, prefix: /x//a2a}, {type: slack, prefix: /s/./x}, {type: a2a, prefix: /b/}]\n",
			want: []string{"interfaces[0].prefix: \"/x//a2a\" is not a normal path", "interfaces[1].prefix: \"/s/./x\" is not a normal path", `interfaces[2].prefix: "/b/" must not end with "/" (write "/b")`}},
		{name: "interface unknown field", yaml: jwt + "interfaces: [{type: a2a, path: /x}]\n", want: []string{"interfaces[0].path: unknown field"}},
		{name: "unknown nested field", yaml: jwt + "  claims:\n    scopes: scp\n    roles: roles\n", want: []string{"jwt.claims.roles: unknown field"}},
		{name: "two unknown fields", yaml: jwt + "a: 1\nb: 2\n", want: []string{"a: unknown field", "b: unknown field"}},
		{name: "field twice", yaml: jwt + "os_id: a\nos_id: b\n", want: []string{"os_id: set twice"}},
		{name: "bad bool", yaml: jwt + "authorization: maybe\n", want: []string{`authorization: "maybe" must be true or false`}},
		{name: "bool as list", yaml: jwt + "security_key_migration: [true]\n", want: []string{"security_key_migration: must be true or false"}},
		{name: "string as mapping", yaml: jwt + "os_id: {a: b}\n", want: []string{"os_id: must be a string"}},
		{name: "list as string", yaml: jwt + "excluded_routes: /health\n", want: []string{"excluded_routes: must be a list"}},
		{name: "list item mapping", yaml: jwt + "cors_allowed_origins: [https://a.example, {x: y}]\n", want: []string{"cors_allowed_origins[1]: must be a string"}},
		{name: "jwt not a mapping", yaml: "jwt: yes\n", env: map[string]string{envSecurityKey: "k"}, want: []string{"jwt: must be a mapping"}},
		{name: "bad leeway", yaml: jwt + "  leeway: ten seconds\n", want: []string{"jwt.leeway"}},
		{name: "bad unmapped policy", yaml: jwt + "unmapped_routes: block\n", want: []string{`unmapped_routes: "block" must be allow or deny`}},
		{name: "head key", yaml: jwt + "scope_mappings:\n  HEAD /x: []\n", want: []string{`scope_mappings["HEAD /x"]:`, "GET"}},
		{name: "key without method", yaml: jwt + "scope_mappings:\n  /agents/x: [agents:read]\n", want: []string{`scope_mappings["/agents/x"]:`}},
		{name: "lower-case method", yaml: jwt + "scope_mappings:\n  get /x: []\n", want: []string{`scope_mappings["get /x"]:`}},
		{name: "four-part scope", yaml: jwt + "scope_mappings:\n  GET /x: [agents:read, a:b:c:d]\n", want: []string{`scope_mappings["GET /x"][1]:`}},
		{name: "non-string scope", yaml: jwt + "scope_mappings:\n  GET /x: [agents:read, 7]\n", want: []string{`scope_mappings["GET /x"][1]: a scope must be a string (line 5)`}},
		{name: "scopes not a list", yaml: jwt + "scope_mappings:\n  GET /x: agents:read\n", want: []string{`scope_mappings["GET /x"]: must be a list of scopes`}},
		{name: "mapping key twice", yaml: jwt + "scope_mappings:\n  GET /x: []\n  GET /x: [a:b]\n", want: []string{`scope_mappings["GET /x"]: set twice`}},
		{name: "mappings not a mapping", yaml: jwt + "scope_mappings: [GET /x]\n", want: []string{"scope_mappings: must be a mapping"}},
		{name: "bad glob", yaml: jwt + "scope_mappings:\n  GET /x/[a: []\n", want: []string{`scope_mappings["GET /x/[a"]:`}},
		{name: "bad excluded glob", yaml: jwt + "excluded_routes: [/health, \"/x/[ab\"]\n", want: []string{"excluded_routes[1]:"}},
		{name: "relative excluded route", yaml: jwt + "excluded_routes: [health]\n", want: []string{`excluded_routes[0]: "health" must start with "/"`}},
		{name: "bad admin scope", yaml: jwt + "admin_scope: \"a b\"\n", want: []string{"admin_scope:"}},
		{name: "origin with path", yaml: jwt + "cors_allowed_origins: [https://a.example/app]\n", want: []string{"cors_allowed_origins[0]:"}},
		{name: "origin with trailing slash", yaml: jwt + "cors_allowed_origins: [https://a.example/]\n", want: []string{"cors_allowed_origins[0]:", "trailing slash"}},
		{name: "origin without scheme", yaml: jwt + "cors_allowed_origins: [a.example]\n", want: []string{"cors_allowed_origins[0]:"}},
		{name: "process settings are cmd's", yaml: jwt + "grpc_addr: 127.0.0.1:1\n", want: []string{"grpc_addr: unknown field"}},
		{name: "verify audience without audience", yaml: jwt + "  verify_audience: true\n", want: []string{"jwt.audience:", "AGENT_OS_ID"}},
		{name: "two documents", yaml: jwt + "---\nos_id: x\n", want: []string{"more than one YAML document"}},
		{name: "not a mapping", yaml: "- a\n- b\n", want: []string{"must be a mapping"}},
		{name: "syntax", yaml: "os_id: [\n", want: []string{"config:"}},
		{name: "every problem at once", yaml: jwt + "unmapped_routes: x\nexcluded_routes: [y]\nfoo: 1\n",
			want: []string{"unmapped_routes:", "excluded_routes[0]:", "foo: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.yaml), env(tt.env), LoadOptions{})
			if err == nil {
				t.Fatalf("Load(%q) succeeded, want an error naming %q", tt.yaml, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q) = %q\nwant it to contain %q", tt.yaml, err, w)
				}
			}
		})
	}
}

func TestLoadFieldErrors(t *testing.T) {
	_, err := Load([]byte("os_id: x\nbogus: 1\n"), env(map[string]string{envVerificationKey: hsKey}), LoadOptions{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "bogus" || fe.Line != 2 {
		t.Fatalf("Load error = %v, want a *FieldError for bogus at line 2", err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "defaults with an env key",
			yaml: "jwt:\n  algorithms: [HS256]\n",
			env:  map[string]string{envVerificationKey: hsKey},
			check: func(t *testing.T, c *Config) {
				// JWT defaults are the JWT section's own business; compare the rest.
				want := defaultConfig()
				want.JWT = c.JWT
				want.compiled = c.compiled
				if !reflect.DeepEqual(*c, want) {
					t.Errorf("Load = %+v\nwant %+v", *c, want)
				}
				if !reflect.DeepEqual(c.JWT.VerificationKeys, []string{hsKey}) {
					t.Errorf("verification_keys = %q, want the env key", c.JWT.VerificationKeys)
				}
				if !c.AuthorizationEnabled() {
					t.Error("AuthorizationEnabled() = false, want true with a JWT source")
				}
			},
		},
		{
			name: "file, env precedence",
			yaml: "os_id: file-os\nsecurity_key: file-key\n",
			env:  map[string]string{envOSID: "env-os", envSecurityKey: "env-key", envJWKSFile: ""},
			check: func(t *testing.T, c *Config) {
				if c.OSID != "env-os" || c.SecurityKey != "env-key" {
					t.Errorf("env over file: os_id %q, security_key set %v", c.OSID, c.SecurityKey == "env-key")
				}
				if c.JWT.JWKSFile != "" {
					t.Errorf("an empty variable counts as unset: jwks_file = %q", c.JWT.JWKSFile)
				}
				if c.AuthorizationEnabled() {
					t.Error("AuthorizationEnabled() = true with the security key only, want false")
				}
			},
		},
		{
			name: "env key added to the file's keys",
			yaml: "jwt:\n  algorithms: [HS256]\n  verification_keys: [file-secret-0123456789abcdef0123456789]\n",
			env:  map[string]string{envVerificationKey: hsKey},
			check: func(t *testing.T, c *Config) {
				want := []string{"file-secret-0123456789abcdef0123456789", hsKey}
				if !reflect.DeepEqual(c.JWT.VerificationKeys, want) {
					t.Errorf("verification_keys = %q, want %q", c.JWT.VerificationKeys, want)
				}
			},
		},
		{
			name: "scope_mappings keep file order",
			yaml: "jwt: {verification_keys: [" + hsKey + "], algorithms: [HS256]}\n" +
				"scope_mappings:\n  \"GET /z\": [z:read]\n  \"GET /a\": []\n  \"POST /m/*\": [m:write, agents:web:run]\n",
			check: func(t *testing.T, c *Config) {
				want := ScopeMappings{
					{Key: "GET /z", Scopes: []string{"z:read"}},
					{Key: "GET /a", Scopes: []string{}},
					{Key: "POST /m/*", Scopes: []string{"m:write", "agents:web:run"}},
				}
				if !reflect.DeepEqual(c.ScopeMappings, want) {
					t.Errorf("scope_mappings = %+v, want %+v", c.ScopeMappings, want)
				}
			},
		},
		{
			name: "excluded_routes empty list means none",
			yaml: "excluded_routes: []\nsecurity_key: k\n",
			check: func(t *testing.T, c *Config) {
				if c.ExcludedRoutes == nil || len(c.ExcludedRoutes) != 0 {
					t.Errorf("excluded_routes = %#v, want empty", c.ExcludedRoutes)
				}
			},
		},
		{
			name: "null values keep defaults",
			yaml: "excluded_routes:\nadmin_scope:\nsecurity_key: k\n",
			check: func(t *testing.T, c *Config) {
				if !reflect.DeepEqual(c.ExcludedRoutes, defaultExcludedRoutes()) || c.AdminScope != scopes.DefaultAdminScope {
					t.Errorf("excluded_routes = %q, admin_scope = %q; want the defaults", c.ExcludedRoutes, c.AdminScope)
				}
			},
		},
		{
			name: "authorization false explicit",
			yaml: "authorization: false\njwt:\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n",
			check: func(t *testing.T, c *Config) {
				if c.AuthorizationEnabled() {
					t.Error("AuthorizationEnabled() = true, want false as configured")
				}
			},
		},
		{
			name: "migration",
			yaml: "security_key_migration: true\njwt:\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n",
			env:  map[string]string{envSecurityKey: "k"},
			check: func(t *testing.T, c *Config) {
				if !c.SecurityKeyMigration || c.SecurityKey != "k" || !c.AuthorizationEnabled() {
					t.Errorf("migration config = %+v", c)
				}
			},
		},
		{
			name: "audience defaults to os_id",
			yaml: "os_id: my-os\njwt:\n  verify_audience: true\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n",
			check: func(t *testing.T, c *Config) {
				if got := c.ExpectedAudience(); !reflect.DeepEqual(got, []string{"my-os"}) {
					t.Errorf("ExpectedAudience() = %q, want [my-os]", got)
				}
			},
		},
		{
			name:  "anchors",
			yaml:  "x-common: &k " + hsKey + "\n",
			check: nil, // unknown field x-common: must fail; covered below
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load([]byte(tt.yaml), env(tt.env), LoadOptions{})
			if tt.check == nil {
				if err == nil {
					t.Fatalf("Load(%q) succeeded, want an error", tt.yaml)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) = %v", tt.yaml, err)
			}
			tt.check(t, c)
		})
	}
}
