package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
)

// runRoutes prints the effective route table of a configuration as the
// policy API's ListRoutes returns it: in match order, each route's origin,
// the scope_mappings entries that override a default or interface route,
// and the custom patterns an earlier pattern shadows.
func runRoutes(_ context.Context, args []string, s sys) int {
	fset := newFlagSet("routes", "[--config F] [--json]",
		"Prints the effective route table of the configuration of --config (or AUTHZ_CONFIG)\n"+
			"and the environment: the default AgentOS routes, the interfaces' routes and\n"+
			"scope_mappings, in match order (an exact key wins, then patterns in this order),\n"+
			"marking overrides, interface routes and shadowed patterns; then the excluded routes.\n"+
			"The key sources are not needed: without one, an ephemeral key stands in.",
		s.stderr)
	cfgPath := fset.String("config", "", "configuration file (default $AUTHZ_CONFIG)")
	asJSON := fset.Bool("json", false, "print the ListRoutes answer as JSON (protojson)")
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	resp, err := loadRoutes(configPath(*cfgPath, s.lookupEnv), s)
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	if *asJSON {
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
		if err != nil {
			fmt.Fprintf(s.stderr, "agentos-authz routes: %v\n", err)
			return exitFault
		}
		fmt.Fprintln(s.stdout, string(b))
		return exitOK
	}
	printRoutes(s.stdout, resp)
	return exitOK
}

// loadRoutes compiles the configuration at path and returns its table. A
// configuration without a credential source of its own (production sets
// the key in the environment) is compiled with an ephemeral key: the table
// does not depend on it.
func loadRoutes(path string, s sys) (*authzv1.ListRoutesResponse, error) {
	text, err := readConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := loadText(text, s.lookupEnv, serveconfig.Flags{})
	if err != nil {
		// Perhaps only the key source is missing: try with a stand-in, and
		// report the first problems when that does not help.
		_, pubPEM, kerr := ephemeralPublicKey()
		if kerr != nil {
			return nil, kerr
		}
		keyed, kerr := withEphemeralKey(text, pubPEM)
		if kerr != nil {
			return nil, err
		}
		var retryErr error
		if cfg, retryErr = loadText(keyed, s.lookupEnv, serveconfig.Flags{}); retryErr != nil {
			return nil, err
		}
	}
	a, err := authz.New(cfg.Config, authz.Options{Logger: zap.NewNop(), Clock: s.now})
	if err != nil {
		return nil, err
	}
	rt, ok := a.Routes()
	if !ok {
		return nil, fmt.Errorf("no route table")
	}
	return envoy.RoutesResponse(&rt), nil
}

// ephemeralPublicKey makes a throwaway key pair of testAlg.
func ephemeralPublicKey() (authz.SigningAlgorithm, []byte, error) {
	spec, err := authz.LookupSigningAlgorithm(testAlg)
	if err != nil {
		return authz.SigningAlgorithm{}, nil, err
	}
	key, err := generateKey(spec)
	if err != nil {
		return authz.SigningAlgorithm{}, nil, fmt.Errorf("ephemeral key: %w", err)
	}
	_, pub, err := encodeKeyPair(key)
	return spec, pub, err
}

// printRoutes writes the table, one route per line, then a summary and
// the excluded routes.
func printRoutes(w io.Writer, r *authzv1.ListRoutesResponse) {
	counts := map[authzv1.Origin]int{}
	overrides, shadowed := 0, 0
	keyWidth := len("ROUTE")
	for _, rt := range r.GetRoutes() {
		keyWidth = max(keyWidth, len(rt.GetKey()))
	}
	fmt.Fprintf(w, "%4s  %-*s  %-18s  %s\n", "#", keyWidth, "ROUTE", "ORIGIN", "SCOPES")
	for i, rt := range r.GetRoutes() {
		counts[rt.GetOrigin()]++
		origin := originText(rt)
		scopes := strings.Join(rt.GetScopes(), ", ")
		if scopes == "" {
			scopes = "(any authenticated caller)"
		}
		var notes []string
		if rt.GetOverrides() {
			overrides++
			from := "default"
			if rt.GetInterfaceType() != "" {
				from = "interface " + rt.GetInterfaceType()
			}
			notes = append(notes, "OVERRIDES the "+from+" route")
		}
		if rt.GetShadowed() {
			shadowed++
			notes = append(notes, "SHADOWED by "+rt.GetShadowedBy()+" (matches its exact key only)")
		}
		line := fmt.Sprintf("%4d  %-*s  %-18s  %s", i+1, keyWidth, rt.GetKey(), origin, scopes)
		if len(notes) > 0 {
			line += "   [" + strings.Join(notes, "; ") + "]"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\n%d routes: %d default, %d interface, %d custom (%d override%s, %d shadowed)\n",
		len(r.GetRoutes()), counts[authzv1.Origin_ORIGIN_DEFAULT], counts[authzv1.Origin_ORIGIN_INTERFACE],
		counts[authzv1.Origin_ORIGIN_CUSTOM], overrides, plural(overrides), shadowed)
	authorization := "on"
	if !r.GetAuthorization() {
		authorization = "off (scopes are not enforced)"
	}
	fmt.Fprintf(w, "authorization: %s; unmapped_routes: %s; admin_scope: %s\n", authorization, r.GetUnmappedRoutes(), r.GetAdminScope())
	fmt.Fprintf(w, "excluded routes (no credential needed): %s\n", listOrNone(r.GetExcludedRoutes()))
}

// originText is a route's origin column.
func originText(rt *authzv1.Route) string {
	switch rt.GetOrigin() {
	case authzv1.Origin_ORIGIN_INTERFACE:
		return "interface:" + rt.GetInterfaceType()
	case authzv1.Origin_ORIGIN_CUSTOM:
		return "custom"
	}
	return "default"
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, " ")
}
