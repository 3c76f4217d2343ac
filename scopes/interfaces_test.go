package scopes

import (
	"errors"
	"strings"
	"testing"
)

func TestInterfaceRoutes(t *testing.T) {
	tab, err := Compile(Options{
		Interfaces: []Interface{
			{Type: InterfaceA2A, Prefix: "/a2a"},
			{Type: InterfaceAGUI, Prefix: "", Family: "teams"},
			{Type: InterfaceAGUI, Prefix: "/agents-ui", Family: "agents"},
			{Type: InterfaceSlack, Prefix: "/slack"},
		},
		Custom: []Mapping{
			{Key: "POST /a2a/agents/*/v1/tasks:get", Scopes: []string{"agents:run"}}, // replaces in place
			{Key: "GET /custom", Scopes: []string{}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	admin := tab.Parse([]string{"agent_os:admin"})
	tests := []struct {
		method, path string
		scopes       []string
		want         bool
		required     string
	}{
		{method: "POST", path: "/a2a/agents/web/v1/message:send", want: false, required: "agents:run"},
		{method: "POST", path: "/a2a/agents/web/v1/message:send", scopes: []string{"agents:web:run"}, want: true, required: "agents:run"},
		{method: "POST", path: "/a2a/agents/web/v1/message:send", scopes: []string{"agents:other:run"}, want: false, required: "agents:run"},
		{method: "GET", path: "/a2a/teams/t1/.well-known/agent-card.json", scopes: []string{"teams:t1:read"}, want: true, required: "teams:read"},
		{method: "POST", path: "/a2a/workflows/w1/v1/message:stream", scopes: []string{"workflows:run"}, want: true, required: "workflows:run"},
		{method: "POST", path: "/a2a/message/send", want: false, required: "agents:run"},
		{method: "POST", path: "/a2a/agents/web/v1/tasks:get", scopes: []string{"agents:read"}, want: false, required: "agents:run"},
		{method: "POST", path: "/agui", scopes: []string{"teams:run"}, want: true, required: "teams:run"},
		{method: "POST", path: "/agui", scopes: []string{"agents:run"}, want: false, required: "teams:run"},
		{method: "POST", path: "/agents-ui/agui", scopes: []string{"agents:run"}, want: true, required: "agents:run"},
	}
	for _, tt := range tests {
		set := tab.Parse(tt.scopes)
		r := tab.Check(tt.method, tt.path, &set)
		if r.Allowed != tt.want || r.Rule == nil || strings.Join(r.Rule.Scopes, ",") != tt.required {
			t.Errorf("Check(%s %s, %v) = allowed %v rule %+v; want %v requiring %s", tt.method, tt.path, tt.scopes, r.Allowed, r.Rule, tt.want, tt.required)
		}
		if ra := tab.Check(tt.method, tt.path, &admin); !ra.Allowed {
			t.Errorf("Check(%s %s, admin) denied", tt.method, tt.path)
		}
	}
	// Order: defaults, then interface routes, then new custom keys.
	rules := tab.Rules()
	var firstIface, lastIface, custom int = -1, -1, -1
	for i, r := range rules {
		switch {
		case r.Interface != "" && firstIface < 0:
			firstIface = i
			fallthrough
		case r.Interface != "":
			lastIface = i
		case r.Key == "GET /custom":
			custom = i
		}
	}
	if firstIface != len(Defaults()) || custom != lastIface+1 || custom != len(rules)-1 {
		t.Errorf("table order: interface rules at %d..%d, new custom key at %d of %d; want defaults, interfaces, custom", firstIface, lastIface, custom, len(rules))
	}
	for _, r := range rules {
		if r.Key == "POST /a2a/agents/*/v1/tasks:get" && (!r.Custom || r.Interface != InterfaceA2A) {
			t.Errorf("replaced interface rule = %+v, want Custom and Interface a2a", r)
		}
	}
}

func TestInterfaceErrors(t *testing.T) {
	tests := []struct {
		in    Interface
		field string
		msg   string
	}{
		{in: Interface{Type: "mcp"}, field: "interfaces[0].type", msg: "not an AgentOS interface"},
		{in: Interface{Type: InterfaceAGUI}, field: "interfaces[0].family", msg: "agents or teams"},
		{in: Interface{Type: InterfaceAGUI, Family: "workflows"}, field: "interfaces[0].family", msg: "not agents or teams"},
		{in: Interface{Type: InterfaceA2A, Prefix: "/a2a", Family: "agents"}, field: "interfaces[0].family", msg: "only agui"},
		{in: Interface{Type: InterfaceA2A, Prefix: "a2a"}, field: "interfaces[0].prefix", msg: "start with"},
		{in: Interface{Type: InterfaceA2A, Prefix: "/a2a/"}, field: "interfaces[0].prefix", msg: `write "/a2a"`},
		{in: Interface{Type: InterfaceA2A, Prefix: "/a*"}, field: "interfaces[0].prefix", msg: "glob"},
	}
	for _, tt := range tests {
		_, err := Compile(Options{Interfaces: []Interface{tt.in}})
		var ie *InterfaceError
		if !errors.As(err, &ie) || !errors.Is(err, ErrBadInterface) || !strings.HasPrefix(err.Error(), tt.field+": ") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Compile(%+v) error = %v; want %s: …%s…", tt.in, err, tt.field, tt.msg)
		}
	}
	// The same interface twice adds the same keys twice.
	_, err := Compile(Options{Interfaces: []Interface{{Type: InterfaceA2A, Prefix: "/a2a"}, {Type: InterfaceA2A, Prefix: "/a2a"}}})
	if err == nil || !strings.Contains(err.Error(), "interfaces[1].prefix") || !strings.Contains(err.Error(), "a2a interface") {
		t.Errorf("Compile(two a2a at /a2a) error = %v; want interfaces[1].prefix naming the a2a interface", err)
	}
}

func TestInterfaceExcluded(t *testing.T) {
	for _, tt := range []struct {
		in   Interface
		want string
	}{
		{in: Interface{Type: InterfaceSlack, Prefix: "/slack"}, want: "/slack/*"},
		{in: Interface{Type: InterfaceTelegram, Prefix: "/tg"}, want: "/tg/*"},
		{in: Interface{Type: InterfaceWhatsApp, Prefix: ""}, want: "/*"},
		{in: Interface{Type: InterfaceA2A, Prefix: "/a2a"}, want: ""},
	} {
		if got := tt.in.Excluded(); got != tt.want {
			t.Errorf("%+v.Excluded() = %q, want %q", tt.in, got, tt.want)
		}
	}
}
