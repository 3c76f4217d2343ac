package authz

import (
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	// agentos_verifies silences the listing-filter warning, tested below.
	verifies := "upstream:\n  agentos_verifies: true\n"
	jwt := "jwt:\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n" + verifies
	tests := []struct {
		name string
		yaml string
		want []string // "field: substring", each required
	}{
		{name: "defaults", yaml: jwt},
		{name: "authorization off", yaml: jwt + "authorization: false\n", want: []string{"authorization: false with a JWT source"}},
		{name: "validate off", yaml: "jwt:\n  algorithms: [HS256]\n  validate: false\n" + verifies, want: []string{"jwt.validate: false"}},
		{name: "excluded everything", yaml: jwt + "excluded_routes: ['/*']\n", want: []string{`excluded_routes[0]: "/*" matches routes of the table`}},
		{name: "excluded one route", yaml: jwt + "excluded_routes: [/health, /config]\n", want: []string{`excluded_routes[1]: "/config" matches routes of the table (GET /config`}},
		{name: "admin scope ordinary", yaml: jwt + "admin_scope: agents:read\n", want: []string{`admin_scope: "agents:read" has the resource:action shape`}},
		{name: "short secrets allowed", yaml: "jwt:\n  algorithms: [HS256]\n  verification_keys: [short]\n  allow_short_hmac_secrets: true\n" + verifies,
			want: []string{"jwt.allow_short_hmac_secrets: true: HMAC secrets shorter"}},
		{name: "admin scope custom", yaml: jwt + "admin_scope: platform:root\n"},
		{name: "listing filter upstream", yaml: strings.TrimSuffix(jwt, verifies),
			want: []string{"upstream.listing_filter: upstream, but nothing makes AgentOS filter listings"}},
		{name: "listing filter deny", yaml: strings.TrimSuffix(jwt, verifies) + "upstream:\n  listing_filter: deny\n"},
		{name: "listing filter, authentication only", yaml: strings.TrimSuffix(jwt, verifies) + "authorization: false\n",
			want: []string{"authorization: false with a JWT source"}},
		{name: "shadowed mapping", yaml: jwt + "scope_mappings:\n  \"GET /agents/internal-*\": [agent_os:admin]\n",
			want: []string{`scope_mappings["GET /agents/internal-*"]: the earlier pattern "GET /agents/*"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load([]byte(tt.yaml), nil, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings() {
				got = append(got, w.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Warnings() = %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w[:strings.Index(w, ":")]) || !strings.Contains(got[i], w[strings.Index(w, ":")+2:]) {
					t.Errorf("Warnings()[%d] = %q, want %q", i, got[i], w)
				}
			}
		})
	}
}
