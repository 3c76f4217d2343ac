package scopes

import (
	"slices"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want Scope
	}{
		{in: "agents:read", want: Scope{Resource: "agents", Action: "read", Kind: KindGlobal}},
		{in: "agents:*:run", want: Scope{Resource: "agents", ID: "*", Action: "run", Kind: KindWildcard}},
		{in: "agents:web:run", want: Scope{Resource: "agents", ID: "web", Action: "run", Kind: KindResource}},
		{in: "agents:a b:read", want: Scope{Resource: "agents", ID: "a b", Action: "read", Kind: KindResource}},
		{in: "agents:research.v2:read", want: Scope{Resource: "agents", ID: "research.v2", Action: "read", Kind: KindResource}},
		{in: "agents:a%2Fb:read", want: Scope{Resource: "agents", ID: "a%2Fb", Action: "read", Kind: KindResource}},
		{in: "agents:550e8400-e29b-41d4-a716-446655440000:run", want: Scope{Resource: "agents", ID: "550e8400-e29b-41d4-a716-446655440000", Action: "run", Kind: KindResource}},
		{in: "system:read", want: Scope{Resource: "system", Action: "read", Kind: KindGlobal}},
		{in: "service_accounts:write", want: Scope{Resource: "service_accounts", Action: "write", Kind: KindGlobal}},
		{in: "agent_os:admin", want: Scope{Resource: "agent_os", Action: "admin", Kind: KindGlobal}},
		{in: "AGENTS:READ", want: Scope{Resource: "AGENTS", Action: "READ", Kind: KindGlobal}}, // a scope, of no family we know
		{in: "agentés:lire", want: Scope{Resource: "agentés", Action: "lire", Kind: KindGlobal}},
		// Unknown shapes: they match nothing.
		{in: ""},
		{in: "agents"},
		{in: "admin"},
		{in: ":"},
		{in: "agents:"},
		{in: ":read"},
		{in: "agents::read"},
		{in: "agents:a1:b:read"},
		{in: "a:b:c:d"},
		{in: "*:read"},
		{in: "agents:*"},
		{in: "*:*:*"},
		{in: "agents :read"},
		{in: "agents: read"},
		{in: "agents:read\n"},
		{in: "agents:a\x00:read"},
		{in: "agents:a\tb:read"},
		{in: "agents:\xff:read"},
		{in: "agents\u00a0:read"}, // no-break space
		{in: "agents:read\u0085"}, // NEL
	}
	for _, tt := range tests {
		got := ParseScope(tt.in)
		if got != tt.want {
			t.Errorf("ParseScope(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.Kind != KindUnknown && got.String() != tt.in {
			t.Errorf("ParseScope(%q).String() = %q, want the input", tt.in, got.String())
		}
		if got.Kind == KindUnknown && got.String() != "" {
			t.Errorf("ParseScope(%q).String() = %q, want \"\"", tt.in, got.String())
		}
	}
}

func TestScopeFamily(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "system:read", want: "config"}, // docs/CONTRACT.md §5: legacy alias
		{in: "system:*:write", want: "config"},
		{in: "config:read", want: "config"},
		{in: "systems:read", want: "systems"},
		{in: "SYSTEM:read", want: "SYSTEM"},
		{in: "agents:read", want: "agents"},
	}
	for _, tt := range tests {
		if got := ParseScope(tt.in).Family(); got != tt.want {
			t.Errorf("ParseScope(%q).Family() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindUnknown: "unknown", KindGlobal: "global", KindWildcard: "wildcard", KindResource: "resource", Kind(9): "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestSet(t *testing.T) {
	table := mustCompile(t, Options{})
	raw := []string{"agents:read", "bogus", "system:read", "agents:*:run", "teams:t1:read", "agents:read"}
	set := table.Parse(raw)
	if got := set.Scopes(); !slices.Equal(got, raw) {
		t.Errorf("Scopes() = %q, want %q (unknown and duplicate scopes kept, in order)", got, raw)
	}
	if set.Len() != len(raw) {
		t.Errorf("Len() = %d, want %d", set.Len(), len(raw))
	}
	if set.IsAdmin() {
		t.Error("IsAdmin() = true for a caller without the admin scope")
	}
	has := []struct {
		scope string
		want  bool
	}{
		{scope: "agents:read", want: true},
		{scope: "bogus", want: true}, // held as sent, though it matches nothing
		{scope: "config:read", want: true},
		{scope: "system:read", want: true},
		{scope: "system:*:read", want: false},
		{scope: "agents:*:run", want: true},
		{scope: "agents:run", want: false}, // Has is membership, not Check
		{scope: "teams:t1:read", want: true},
		{scope: "teams:read", want: false},
		{scope: "agent_os:admin", want: false},
		{scope: "", want: false},
	}
	for _, tt := range has {
		if got := set.Has(tt.scope); got != tt.want {
			t.Errorf("Parse(%q).Has(%q) = %v, want %v", raw, tt.scope, got, tt.want)
		}
	}

	admin := table.Parse([]string{"agents:read", DefaultAdminScope})
	if !admin.IsAdmin() {
		t.Errorf("Parse(%q).IsAdmin() = false, want true", admin.Scopes())
	}
	custom := mustCompile(t, Options{AdminScope: "platform:root"})
	if s := custom.Parse([]string{DefaultAdminScope}); s.IsAdmin() {
		t.Error("the default admin scope is an admin under a table with another admin scope")
	}
	if s := custom.Parse([]string{"platform:root"}); !s.IsAdmin() {
		t.Error("the configured admin scope is not an admin")
	}

	var zero Set
	var nilSet *Set
	if zero.Len() != 0 || zero.Scopes() != nil || zero.IsAdmin() || zero.Has("agents:read") ||
		nilSet.Len() != 0 || nilSet.Scopes() != nil || nilSet.IsAdmin() || nilSet.Has("agents:read") {
		t.Error("the zero or nil Set holds something")
	}
	var nilTable *Table
	if s := nilTable.Parse([]string{DefaultAdminScope}); s.IsAdmin() {
		t.Error("a nil Table made an admin")
	}
}

func TestPolicy(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{in: "allow", want: UnmappedAllow},
		{in: "deny", want: UnmappedDeny},
		{in: "Deny", wantErr: true},
		{in: "", wantErr: true},
		{in: "block", wantErr: true},
	} {
		got, err := ParsePolicy(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		var p Policy
		if err := p.UnmarshalText([]byte(tt.in)); (err != nil) != tt.wantErr || p != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v", tt.in, p, err)
		}
		if !tt.wantErr {
			if b, err := got.MarshalText(); err != nil || string(b) != tt.in {
				t.Errorf("%v.MarshalText() = %q, %v; want %q", got, b, err, tt.in)
			}
		}
	}
	if _, err := Policy(5).MarshalText(); err == nil {
		t.Error("Policy(5).MarshalText() succeeded")
	}
	if got := Policy(5).String(); got != "Policy(5)" {
		t.Errorf("Policy(5).String() = %q", got)
	}
}
