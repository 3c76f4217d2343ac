package authz

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/agentos-authz/agentos-authz/authz/internal/idtoken"
	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/scopes"
)

// Config is the service configuration (docs/CONTRACT.md §4) after Load merged the
// defaults, the YAML file, the environment and the flags. Every field is
// optional in the file. New compiles a validated Config into the immutable
// snapshot Decide reads; a Config is not used per request.
type Config struct {
	// OSID is the AgentOS id (AGENT_OS_ID): the default expected audience.
	OSID string `yaml:"os_id"`
	// Authorization enforces scopes; nil means the default: true with a
	// JWT source, false otherwise (see AuthorizationEnabled).
	Authorization *bool `yaml:"authorization"`
	// AdminScope grants everything (default agent_os:admin).
	AdminScope string `yaml:"admin_scope"`
	// UnmappedRoutes is "allow" or "deny" (routes with no table entry).
	UnmappedRoutes string `yaml:"unmapped_routes"`
	// JWT is the jwt: section (JWT_VERIFICATION_KEY, JWT_JWKS_FILE and
	// JWT_JWKS_URL are merged into it).
	JWT JWTConfig `yaml:"jwt"`
	// ScopeMappings are merged over the default route table, in file order.
	ScopeMappings ScopeMappings `yaml:"scope_mappings"`
	// Interfaces are the AgentOS interfaces mounted upstream: their routes
	// join the table, or the excluded routes for webhook interfaces.
	Interfaces []InterfaceConfig `yaml:"interfaces"`
	// ExcludedRoutes are path globs allowed without a credential; nil is
	// impossible after Load (the defaults), empty means none.
	ExcludedRoutes []string `yaml:"excluded_routes"`
	// CORSAllowedOrigins are the origins echoed on error responses; empty
	// means any.
	CORSAllowedOrigins []string `yaml:"cors_allowed_origins"`
	// SecurityKey is the deprecated static bearer key (OS_SECURITY_KEY).
	SecurityKey string `yaml:"security_key"`
	// SecurityKeyMigration accepts the key beside JWTs (docs/CONTRACT.md §7).
	SecurityKeyMigration bool `yaml:"security_key_migration"`
	// ServiceAccounts is the service_accounts: section (docs/CONTRACT.md §8).
	ServiceAccounts ServiceAccountsConfig `yaml:"service_accounts"`

	// Upstream is the upstream: section (docs/CONTRACT.md §9): identity
	// tokens for the upstream AgentOS and the listing filter.
	Upstream UpstreamConfig `yaml:"upstream"`

	// Log is the log: section (decision logging).
	Log LogConfig `yaml:"log"`

	// Mode is "enforce" (the default) or "shadow": allow everything, report
	// the decision that enforce mode would have made (config_operate.go).
	Mode string `yaml:"mode"`

	// The serve process's own sections of the file (the listeners, tls:,
	// tracing:, http:, shutdown_delay) are cmd's: internal/serveconfig,
	// decoded beside these through LoadOptions.Extra.

	// compiled is what Load compiled (nil in a Config not made by Load).
	compiled *compiled
}

// defaultExcludedRoutes returns the default excluded_routes (docs/CONTRACT.md §4).
func defaultExcludedRoutes() []string {
	return []string{"/", "/health", "/info", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
}

// defaultConfig returns the configuration with nothing set: no credential
// source, so it does not validate by itself.
func defaultConfig() Config {
	return Config{
		AdminScope:     scopes.DefaultAdminScope,
		JWT:            defaultJWTConfig(),
		UnmappedRoutes: "allow",
		Mode:           ModeEnforce,
		Log:            LogConfig{DenialsPerSecond: DefaultDenialsPerSecond, DenialBurst: DefaultDenialBurst},
		ExcludedRoutes: defaultExcludedRoutes(),
		Upstream:       defaultUpstreamConfig(),
	}
}

// LoadOptions are Load's optional inputs: the caller's own sections of the
// same file. cmd keeps the serve process's settings (listeners, TLS,
// tracing, the shutdown delay) there, in internal/serveconfig: the
// pipeline never reads them, yet they share the one file, its strict
// decoding and its error type.
type LoadOptions struct {
	// Extra, when non-nil, points to a struct whose yaml-tagged fields are
	// further top-level keys of the file. The root mapping is decoded into
	// the Config and Extra by the same strict decoder: a key that names a
	// field of neither is an unknown field, and a problem inside Extra's
	// sections is a *FieldError naming its path. A key of both is refused.
	Extra any
	// CheckExtra, when set, runs after the file and the environment are
	// applied and returns Extra's problems, each a *FieldError; Load joins
	// them with its own, so one run names every mistake.
	CheckExtra func() []error
}

// Environment variables read by Load (docs/CONTRACT.md §3). AUTHZ_CONFIG, the path
// of the file, is cmd's business.
const (
	envVerificationKey = "JWT_VERIFICATION_KEY"
	envJWKSFile        = "JWT_JWKS_FILE"
	envJWKSURL         = "JWT_JWKS_URL"
	envSecurityKey     = "OS_SECURITY_KEY"
	envOSID            = "AGENT_OS_ID"
)

// Load builds the configuration from its inputs, in the contract's order:
// defaults, then the YAML text (strict: unknown fields are errors), then the
// environment read through lookupEnv (nil reads none; JWT_VERIFICATION_KEY is
// added to jwt.verification_keys, the others replace their field; an empty
// variable counts as unset); then it compiles the result, once: the
// route table, the excluded routes, the keys (every key, JWKS, CA and
// signing key file read here and never again), which New and Reload
// build from. Validation is that compilation. The error joins every
// problem, each a *FieldError naming its YAML path; opts.Extra's sections
// are decoded and checked in the same pass.
func Load(yamlText []byte, lookupEnv func(string) (string, bool), opts LoadOptions) (*Config, error) {
	c := defaultConfig()
	fieldErrs, err := c.decodeYAML(yamlText, opts.Extra)
	if err != nil {
		return nil, err // not YAML at all: nothing else is worth checking
	}
	c.applyEnv(lookupEnv)
	var extraErrs []error
	if opts.CheckExtra != nil {
		extraErrs = opts.CheckExtra()
	}
	// Report the file's field problems and the compilation's together, so
	// one run names every mistake.
	cc, cerr := c.compile()
	var problems []error
	for _, e := range append(append(fieldErrs, cerr), extraErrs...) {
		problems = appendProblems(problems, e)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if cc.settings, err = yaml.Marshal(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.compiled = cc
	return &c, nil
}

// decodeYAML fills c, and extra (LoadOptions.Extra, when non-nil), from
// text. err is a document-level failure (syntax, several documents, not a
// mapping: a *FieldError for "config"); fieldErrs are the problems of individual fields, the rest of
// the document decoded regardless.
func (c *Config) decodeYAML(text []byte, extra any) (fieldErrs []error, err error) {
	targets := []reflect.Value{reflect.ValueOf(c).Elem()}
	if extra != nil {
		v := reflect.ValueOf(extra)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return nil, fmt.Errorf("authz: LoadOptions.Extra is a %T, not a pointer to a struct", extra)
		}
		targets = append(targets, v.Elem())
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file: every field optional
		}
		return nil, &FieldError{Field: "config", Err: err}
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, &FieldError{Field: "config", Err: errors.New("more than one YAML document")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &FieldError{Field: "config", Line: root.Line, Err: errors.New("the document must be a mapping")}
	}
	var d decoder
	if err := d.root(root, targets); err != nil {
		return nil, err
	}
	return d.errs, nil
}

func (c *Config) applyEnv(lookupEnv func(string) (string, bool)) {
	if lookupEnv == nil {
		return
	}
	get := func(name string) (string, bool) {
		v, ok := lookupEnv(name)
		return v, ok && v != ""
	}
	if v, ok := get(envVerificationKey); ok {
		c.JWT.VerificationKeys = append(c.JWT.VerificationKeys, v)
	}
	if v, ok := get(envJWKSFile); ok {
		c.JWT.JWKSFile = v
	}
	if v, ok := get(envJWKSURL); ok {
		c.JWT.JWKSURL = v
	}
	if v, ok := get(envSecurityKey); ok {
		c.SecurityKey = v
	}
	if v, ok := get(envOSID); ok {
		c.OSID = v
	}
	if v, ok := get(envServiceAccountsDBURL); ok {
		c.ServiceAccounts.DBURL = v
	}
}

// AuthorizationEnabled reports whether scopes are enforced: the
// authorization setting, by default true exactly when a JWT source exists.
func (c *Config) AuthorizationEnabled() bool {
	if c.Authorization != nil {
		return *c.Authorization
	}
	return c.JWT.HasSource()
}

// ExpectedAudience is the audience a token must carry when
// jwt.verify_audience is on: jwt.audience, by default [os_id].
func (c *Config) ExpectedAudience() []string {
	if len(c.JWT.Audience) > 0 {
		return c.JWT.Audience
	}
	if c.OSID != "" {
		return []string{c.OSID}
	}
	return nil
}

// migrationSteps is docs/CONTRACT.md §7's way out of the security key.
const migrationSteps = "to migrate from the deprecated security key: " +
	"1) configure a JWT source and authorization: true; " +
	"2) set security_key_migration: true while clients move from the key to JWTs (both are accepted); " +
	"3) unset OS_SECURITY_KEY (and security_key) and remove security_key_migration"

// compiled is what Load compiled of a Config, once (STYLE.md §4, §14
// "Validate by compiling"): the checks that find a configuration's
// problems are the compilation that yields these parts, so every file is
// read once and New and Reload build snapshots from exactly what was
// checked. Immutable.
type compiled struct {
	table    *scopes.Table
	excluded excludedRoutes
	source   tokenSource
	// jwt is the jwt: section compiled (keys parsed, JWKS file and CA
	// file read); nil without a JWT source.
	jwt *jwtauth.Compiled
	// upstreamKey is upstream.signing_key_file parsed; nil without one.
	upstreamKey *idtoken.Key
	// keysFP is keyFingerprint of the above (reload.go).
	keysFP string
	// settings are the Config's fields as Load compiled them (YAML), so
	// that New and Reload refuse a Config changed since: the parts above
	// would no longer be what its fields say.
	settings []byte
}

// Errors of New and Reload given a Config that is not what Load compiled:
// they build from the parts Load compiled, which a Config written by hand
// lacks and a Config changed afterwards contradicts. Load the YAML
// (again) instead.
var (
	errNotLoaded        = errors.New("authz: configuration not made by Load: New and Reload build from what Load compiled")
	errChangedAfterLoad = errors.New("authz: configuration changed after Load: load it again (New and Reload build from what Load compiled)")
)

// loaded returns what Load compiled of c, or why there is nothing to
// build from.
func (c *Config) loaded() (*compiled, error) {
	if c.compiled == nil {
		return nil, errNotLoaded
	}
	if text, err := yaml.Marshal(c); err != nil || !bytes.Equal(text, c.compiled.settings) {
		return nil, errChangedAfterLoad
	}
	return c.compiled, nil
}

// compile reports every problem of c (docs/CONTRACT.md §4), joined, each a
// *FieldError naming its YAML path; without a problem it returns the
// compiled parts New and Reload build from.
func (c *Config) compile() (*compiled, error) {
	var errs []error
	add := func(field string, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	out := &compiled{}
	jwtSource := c.JWT.HasSource()
	key := c.SecurityKey != ""

	// docs/CONTRACT.md §8: service_accounts.db_url is a credential source.
	if !jwtSource && !key && !c.ServiceAccounts.Enabled() {
		add("jwt", "no credential source: set jwt.verification_keys, jwt.jwks_file or jwt.jwks_url "+
			"(or %s, %s, %s), service_accounts.db_url (%s), or the deprecated security_key (%s)",
			envVerificationKey, envJWKSFile, envJWKSURL, envServiceAccountsDBURL, envSecurityKey)
	}
	if c.Authorization != nil && *c.Authorization && !jwtSource {
		add("authorization", "true needs a JWT source (jwt.verification_keys, jwt.jwks_file, jwt.jwks_url "+
			"or jwt.validate: false): scopes come from tokens")
	}
	if jwtSource && key && !c.SecurityKeyMigration {
		add("security_key", "%s (security_key) is set beside a JWT source without security_key_migration: true; %s",
			envSecurityKey, migrationSteps)
	}
	if c.JWT.VerifyAudience && len(c.ExpectedAudience()) == 0 && jwtSource {
		add("jwt.audience", "verify_audience is true but no audience is known: set jwt.audience or os_id (%s)", envOSID)
	}
	policy, err := scopes.ParsePolicy(c.UnmappedRoutes)
	if err != nil {
		add("unmapped_routes", "%q must be allow or deny", c.UnmappedRoutes)
	}
	if out.table, err = c.compileTable(policy); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.checkMappingKeys()...)
	errs = append(errs, c.checkInterfacePrefixes()...)
	if out.excluded, err = compileExcluded(c.excludedRoutes()); err != nil {
		errs = append(errs, err)
	}
	for i, o := range c.CORSAllowedOrigins {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, &FieldError{Field: "cors_allowed_origins[" + strconv.Itoa(i) + "]", Err: err})
		}
	}
	var jwtErrs []error
	out.source, out.jwt, jwtErrs = c.JWT.compile()
	errs = append(errs, jwtErrs...)
	if !jwtSource {
		out.jwt = nil
	}
	var upErrs []error
	out.upstreamKey, upErrs = c.compileUpstreamSection()
	errs = append(errs, upErrs...)
	errs = append(errs, c.Log.check()...)
	errs = append(errs, c.checkOperate()...)
	errs = append(errs, c.ServiceAccounts.check()...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out.keysFP = keyFingerprint(c, out)
	return out, nil
}

// appendProblems appends the problems err joins (errors.Join trees
// flattened, in order) to out, so that Load's error joins each problem
// once, at one level.
func appendProblems(out []error, err error) []error {
	if err == nil {
		return out
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = appendProblems(out, e)
		}
		return out
	}
	return append(out, err)
}

// compileTable compiles the route table; its errors name scope_mappings
// entries.
func (c *Config) compileTable(policy scopes.Policy) (*scopes.Table, error) {
	t, err := scopes.Compile(scopes.Options{
		AdminScope: c.AdminScope,
		Unmapped:   policy,
		Custom:     c.ScopeMappings,
		Interfaces: c.interfaces(),
	})
	if err == nil {
		return t, nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		var me *scopes.MappingError
		var oe *scopes.OptionError
		var ie *scopes.InterfaceError
		switch {
		case errors.As(e, &ie):
			out = append(out, &FieldError{Field: "interfaces[" + strconv.Itoa(ie.Index) + "]." + ie.Field, Err: errors.New(ie.Msg)})
			continue
		case errors.As(e, &me):
			// HEAD keys, bad keys, patterns and scopes (docs/CONTRACT.md §4, §5).
			out = append(out, &FieldError{Field: mappingPath(me.Key, me.Index), Err: errors.New(me.Msg)})
			continue
		case errors.As(e, &oe):
			out = append(out, &FieldError{Field: oe.Option, Err: errors.New(oe.Msg)})
			continue
		}
		out = append(out, &FieldError{Field: "scope_mappings", Err: e})
	}
	return nil, errors.Join(out...)
}

// mappingPath renders scope_mappings["GET /x"][i] (no index when i < 0).
func mappingPath(key string, i int) string {
	p := "scope_mappings[" + strconv.Quote(key) + "]"
	if i >= 0 {
		p += "[" + strconv.Itoa(i) + "]"
	}
	return p
}

// checkOrigin accepts "*" or a browser origin: scheme://host[:port], no
// path, query or user info (an Origin header never has them, so such an
// entry could never match).
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an origin (scheme://host[:port])", o)
	}
	if u.Path == "/" {
		return fmt.Errorf("%q is not an origin: drop the trailing slash (browsers send none)", o)
	}
	return nil
}

// ScopeMappings are the scope_mappings entries in file order (docs/CONTRACT.md §5:
// the order decides which pattern matches first).
type ScopeMappings []scopes.Mapping

// UnmarshalYAML reads the scope_mappings mapping node in document order.
// Each value must be a list of strings ([] = no scope needed).
func (s *ScopeMappings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errors.New(`must be a mapping of "METHOD /path" to a list of scopes`)
	}
	var errs []error
	out := make(ScopeMappings, 0, len(n.Content)/2)
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		key := k.Value
		field := "[" + strconv.Quote(key) + "]"
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, &FieldError{Field: field, Line: k.Line, Err: errors.New(`a key must be a string "METHOD /path"`)})
			continue
		}
		if seen[key] {
			errs = append(errs, &FieldError{Field: field, Line: k.Line, Err: errors.New("set twice")})
			continue
		}
		seen[key] = true
		if v.Kind != yaml.SequenceNode {
			errs = append(errs, &FieldError{Field: field, Line: v.Line, Err: errors.New("must be a list of scopes ([] for none)")})
			continue
		}
		m := scopes.Mapping{Key: key, Scopes: make([]string, 0, len(v.Content))}
		bad := false
		for j, item := range v.Content {
			if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
				errs = append(errs, &FieldError{Field: field + "[" + strconv.Itoa(j) + "]", Line: item.Line,
					Err: errors.New("a scope must be a string")})
				bad = true
				continue
			}
			m.Scopes = append(m.Scopes, item.Value)
		}
		if !bad {
			out = append(out, m)
		}
	}
	// Keep the good entries even when some are bad, so that Validate still
	// reports the problems of their keys and scopes.
	*s = out
	return errors.Join(errs...)
}
