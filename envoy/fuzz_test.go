package envoy

import (
	"encoding/json"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/agentos-authz/agentos-authz/authz"
)

// FuzzFromCheckRequest: any CheckRequest on the wire translates without a
// panic; Malformed exactly when there are no HTTP attributes; keys are
// lower-case.
func FuzzFromCheckRequest(f *testing.F) {
	for _, name := range []string{"http1-get-query", "raw-header-map", "cookie-browser"} {
		b, err := proto.Marshal(loadFixture(f, name)) // realistic requests
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})                 // empty request
	f.Add([]byte{0x0a, 0x00})       // empty attributes
	f.Add([]byte{0x0a, 0x02, 0x22}) // truncated
	f.Fuzz(func(t *testing.T, wire []byte) {
		cr := &authv3.CheckRequest{}
		if proto.Unmarshal(wire, cr) != nil {
			return
		}
		r := FromCheckRequest(cr)
		if hasHTTP := cr.GetAttributes().GetRequest().GetHttp() != nil; r.Malformed == hasHTTP {
			t.Fatalf("Malformed = %v with http attributes present = %v", r.Malformed, hasHTTP)
		}
		for k := range r.Headers {
			if k != strings.ToLower(k) {
				t.Fatalf("header key %q not lower-case", k)
			}
		}
	})
}

// FuzzToCheckResponse: any decision renders to a CheckResponse that
// marshals, never sets error_response, allows only on 200, and on deny
// carries a JSON body whose detail survives the round trip.
func FuzzToCheckResponse(f *testing.F) {
	f.Add(200, "", "x-agentos-user-id", "alice", "x-agentos-evil")          // allow
	f.Add(401, "Token has expired", "access-control-allow-origin", "o", "") // deny + CORS
	f.Add(403, "a\"b\\<\xff>\u2028", "k", "caf\xe9", "")                    // awkward text
	f.Add(0, "", "", "", "")                                                // zero decision
	f.Add(-7, "x", "k", "v", "r")                                           // nonsense status
	f.Fuzz(func(t *testing.T, status int, detail, name, value, remove string) {
		if name == "" || strings.ContainsAny(name+value, "\x00\r\n") {
			// Header names and values come from authz, never empty nor
			// holding CR, LF or NUL (Envoy rejects those).
			return
		}
		d := authz.Decision{Status: status, Detail: detail,
			Upstream: []authz.Header{{Name: name, Value: value}},
			Response: []authz.Header{{Name: name, Value: value}}}
		if remove != "" && remove != name && !strings.ContainsAny(remove, "\x00\r\n") {
			d.Remove = []string{remove}
		}
		resp := ToCheckResponse(&d)
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("proto.Marshal: %v", err)
		}
		if resp.GetErrorResponse() != nil {
			t.Fatal("error_response set")
		}
		allowed := codes.Code(resp.GetStatus().GetCode()) == codes.OK
		if allowed != (status == 200) {
			t.Fatalf("status %d rendered as gRPC %v", status, codes.Code(resp.GetStatus().GetCode()))
		}
		if allowed {
			return
		}
		var body struct {
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &body); err != nil {
			t.Fatalf("deny body %q: %v", resp.GetDeniedResponse().GetBody(), err)
		}
		// encoding/json's reading of the detail: each invalid byte U+FFFD.
		enc, _ := json.Marshal(detail)
		var want string
		if err := json.Unmarshal(enc, &want); err != nil {
			t.Fatal(err)
		}
		if detail != "" && body.Detail != want {
			t.Fatalf("detail round trip = %q, want %q", body.Detail, want)
		}
	})
}
