package envoy

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/authz"
)

// TestShadowMode runs the real pipeline in mode: shadow behind both
// transports: authentication and authorization denials pass with the
// decision enforce mode would make in x-agentos-shadow-decision, no
// identity and no client-sent x-agentos-* header; a malformed path (400)
// is still refused; each decision is logged and counted as it would have
// been made, with mode shadow.
func TestShadowMode(t *testing.T) {
	text := "os_id: test-os\nmode: shadow\njwt:\n  algorithms: [HS256]\n  verification_keys: [\"" + httpSecret + "\"]\n"
	cfg, err := authz.Load([]byte(text), nil, authz.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obsCore, logs := observer.New(zapcore.InfoLevel)
	a, err := authz.New(cfg, authz.Options{Logger: zap.New(obsCore)})
	if err != nil {
		t.Fatal(err)
	}
	reg, m := newTestMetrics(t)
	dec := m.Decider(a)
	gs := NewServer(dec)
	hh := NewHTTPHandler(dec, HTTPOptions{})
	reader := mintHS(t, "alice", "agents:read")

	tests := []struct {
		name, method, path, auth string
		wantShadow               string // x-agentos-shadow-decision; "" = refused
		wantUser                 string // x-agentos-user-id
		wantStatus               int    // the HTTP status when refused
	}{
		{name: "allowed", method: "GET", path: "/agents", auth: "Bearer " + reader, wantShadow: "200 allowed", wantUser: "alice"},
		{name: "insufficient scopes", method: "POST", path: "/agents/web/runs", auth: "Bearer " + reader, wantShadow: "403 insufficient_scopes"},
		{name: "no credential", method: "GET", path: "/agents", wantShadow: "401 missing_credential"},
		{name: "garbage token", method: "GET", path: "/agents", auth: "Bearer not.a.jwt", wantShadow: "401 invalid_token"},
		{name: "malformed path still refused", method: "GET", path: "/a%2Fb", auth: "Bearer " + reader, wantStatus: 400},
	}
	for _, tc := range tests {
		headers := map[string]string{
			"x-agentos-user-id":         "mallory", // a client's forgery
			"x-agentos-shadow-decision": "200 allowed",
		}
		if tc.auth != "" {
			headers["authorization"] = tc.auth
		}
		t.Run(tc.name+"/grpc", func(t *testing.T) {
			resp, err := gs.Check(t.Context(), envoyRequest(tc.method, tc.path, headers))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantShadow == "" {
				if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != tc.wantStatus {
					t.Errorf("Check(%s %s) = %v, want denied %d", tc.method, tc.path, resp, tc.wantStatus)
				}
				return
			}
			if codes.Code(resp.GetStatus().GetCode()) != codes.OK || resp.GetOkResponse() == nil {
				t.Fatalf("Check(%s %s) = %v, want OK in shadow mode", tc.method, tc.path, resp)
			}
			got := applyOK(headers, resp.GetOkResponse())
			if got[authz.HeaderShadowDecision] != tc.wantShadow || got[authz.HeaderUserID] != tc.wantUser {
				t.Errorf("Check(%s %s) upstream %s=%q %s=%q, want %q %q", tc.method, tc.path,
					authz.HeaderShadowDecision, got[authz.HeaderShadowDecision], authz.HeaderUserID, got[authz.HeaderUserID], tc.wantShadow, tc.wantUser)
			}
		})
		t.Run(tc.name+"/http", func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), tc.method, "http://authz.test/", nil)
			r.RequestURI = tc.path
			for k, v := range headers {
				r.Header.Set(k, v)
			}
			rep := serveCheck(t, hh, r)
			if tc.wantShadow == "" {
				if rep.status != tc.wantStatus {
					t.Errorf("HTTP check %s %s = %d, want %d", tc.method, tc.path, rep.status, tc.wantStatus)
				}
				return
			}
			if rep.status != 200 {
				t.Fatalf("HTTP check %s %s = %d %s, want 200 in shadow mode", tc.method, tc.path, rep.status, rep.body)
			}
			if got := rep.header.Get(authz.HeaderShadowDecision); got != tc.wantShadow {
				t.Errorf("HTTP check %s %s %s = %q, want %q", tc.method, tc.path, authz.HeaderShadowDecision, got, tc.wantShadow)
			}
			removed := strings.Split(rep.header.Get(headerEnvoyRemove), ",")
			user := rep.header.Get(authz.HeaderUserID)
			if user != tc.wantUser || (tc.wantUser == "" && !slices.Contains(removed, authz.HeaderUserID)) {
				t.Errorf("HTTP check %s %s: user %q, removed %q; want user %q and a forged one removed", tc.method, tc.path, user, removed, tc.wantUser)
			}
		})
	}

	got := series(t, reg, MetricChecks)
	for k, want := range map[string]float64{
		"decision=allow,mode=shadow,reason=allowed,status=200":             2,
		"decision=deny,mode=shadow,reason=insufficient_scopes,status=403":  2,
		"decision=deny,mode=shadow,reason=missing_credential,status=401":   2,
		"decision=deny,mode=shadow,reason=invalid_token,status=401":        2,
		"decision=deny,mode=enforce,reason=malformed_path,status=400":      2,
		"decision=deny,mode=enforce,reason=insufficient_scopes,status=403": 0,
	} {
		if got[k] != want {
			t.Errorf("%s{%s} = %v, want %v", MetricChecks, k, got[k], want)
		}
	}
	shadowLines := logs.FilterMessage(authz.MsgDenied).FilterField(zap.String("mode", authz.ModeShadow)).All()
	if len(shadowLines) != 6 {
		t.Errorf("%d shadowed denial lines with mode shadow, want 6 (3 denials x 2 transports)", len(shadowLines))
	}
	for _, l := range shadowLines {
		if tr := l.ContextMap()["transport"]; tr != authz.TransportGRPC && tr != authz.TransportHTTP {
			t.Errorf("shadowed denial line %v lacks its transport", l.ContextMap())
		}
	}
}
