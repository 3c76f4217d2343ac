package scopes

import (
	"errors"
	"fmt"
	"strings"
)

// Interface is one AgentOS interface mounted upstream (docs/CONTRACT.md §5,
// "Interfaces"): its type, the prefix it is mounted at, and for agui the
// family its runs belong to.
type Interface struct {
	Type   string // a2a, agui, slack, telegram or whatsapp
	Prefix string // "" or a normal path without a trailing slash
	Family string // agui only: agents or teams
}

// The interface types AgentOS mounts (docs/CONTRACT.md §5).
const (
	InterfaceA2A      = "a2a"
	InterfaceAGUI     = "agui"
	InterfaceSlack    = "slack"
	InterfaceTelegram = "telegram"
	InterfaceWhatsApp = "whatsapp"
)

// ErrBadInterface is wrapped by the *InterfaceError of a bad Interface.
var ErrBadInterface = errors.New("bad interface")

// InterfaceError is one problem with one Interface: Field is "type",
// "prefix" or "family".
type InterfaceError struct {
	Index int
	Field string
	Msg   string
}

// Error reads `interfaces[0].type: msg`.
func (e *InterfaceError) Error() string {
	return fmt.Sprintf("interfaces[%d].%s: %s", e.Index, e.Field, e.Msg)
}

// Unwrap returns ErrBadInterface.
func (e *InterfaceError) Unwrap() error { return ErrBadInterface }

// DefaultPrefix returns the prefix AgentOS mounts an interface type at when
// none is given, and whether typ is a known interface type.
func DefaultPrefix(typ string) (string, bool) {
	switch typ {
	case InterfaceA2A:
		return "/a2a", true
	case InterfaceAGUI:
		return "", true
	case InterfaceSlack:
		return "/slack", true
	case InterfaceTelegram:
		return "/telegram", true
	case InterfaceWhatsApp:
		return "/whatsapp", true
	}
	return "", false
}

// Routes returns the route-table entries the interface adds, in AgentOS's
// order (nil for the webhook interfaces, whose routes are excluded instead:
// see Excluded). The prefix must be resolved already (DefaultPrefix).
func (in Interface) Routes() []Mapping {
	p := in.Prefix
	switch in.Type {
	case InterfaceA2A:
		var out []Mapping
		for _, f := range []struct{ fam, read, run string }{
			{familyAgents, "agents:read", "agents:run"},
			{familyTeams, "teams:read", "teams:run"},
		} {
			base := p + "/" + f.fam + "/*"
			out = append(out,
				Mapping{Key: "GET " + base + "/.well-known/agent-card.json", Scopes: []string{f.read}},
				Mapping{Key: "POST " + base + "/v1/message:send", Scopes: []string{f.run}},
				Mapping{Key: "POST " + base + "/v1/message:stream", Scopes: []string{f.run}},
				Mapping{Key: "POST " + base + "/v1/tasks:get", Scopes: []string{f.read}},
				Mapping{Key: "POST " + base + "/v1/tasks:cancel", Scopes: []string{f.run}},
			)
		}
		wf := p + "/" + familyWorkflows + "/*"
		return append(out,
			Mapping{Key: "GET " + wf + "/.well-known/agent-card.json", Scopes: []string{"workflows:read"}},
			Mapping{Key: "POST " + wf + "/v1/message:send", Scopes: []string{"workflows:run"}},
			Mapping{Key: "POST " + wf + "/v1/message:stream", Scopes: []string{"workflows:run"}},
			// AgentOS 2.9's legacy A2A endpoints.
			Mapping{Key: "POST " + p + "/message/send", Scopes: []string{"agents:run"}},
			Mapping{Key: "POST " + p + "/message/stream", Scopes: []string{"agents:run"}},
		)
	case InterfaceAGUI:
		return []Mapping{{Key: "POST " + p + "/agui", Scopes: []string{in.Family + ":run"}}}
	}
	return nil
}

// Excluded returns the excluded-route glob of a webhook interface (slack,
// telegram, whatsapp authenticate their own webhooks), or "".
func (in Interface) Excluded() string {
	switch in.Type {
	case InterfaceSlack, InterfaceTelegram, InterfaceWhatsApp:
		return in.Prefix + "/*"
	}
	return ""
}

// checkInterface reports the problems of in that the engine can see: an
// unknown type, a family that is missing or not allowed, and a prefix with a
// glob metacharacter or not of the form "" or "/seg[/seg...]". Whether the
// prefix is a normalised request path is for the caller, which owns
// normalisation.
func checkInterface(i int, in Interface) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &InterfaceError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if _, ok := DefaultPrefix(in.Type); !ok {
		bad("type", "%q is not an AgentOS interface (want a2a, agui, slack, telegram or whatsapp)", in.Type)
	}
	switch {
	case in.Type == InterfaceAGUI && in.Family == "":
		bad("family", "agui needs the family its runs belong to: agents or teams")
	case in.Type == InterfaceAGUI && in.Family != familyAgents && in.Family != familyTeams:
		bad("family", "%q is not agents or teams", in.Family)
	case in.Type != InterfaceAGUI && in.Family != "":
		bad("family", "only agui takes a family")
	}
	if p := in.Prefix; p != "" {
		switch {
		case p[0] != '/':
			bad("prefix", "%q must be \"\" or start with \"/\"", p)
		case strings.HasSuffix(p, "/"):
			bad("prefix", "%q must not end with \"/\" (write %q)", p, strings.TrimRight(p, "/"))
		case strings.ContainsAny(p, "*?[]{}"):
			bad("prefix", "%q must be a plain path, without glob characters", p)
		}
	}
	return errs
}
