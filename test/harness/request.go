package harness

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

// Defaults Envoy's connection manager would have filled in.
const (
	DefaultAuthority = "agentos.test"
	DefaultUserAgent = "agentos-authz-conformance/1"
	DefaultScheme    = "http"
)

// Built is one request shaped as Envoy sends it, with the header lines
// Envoy would forward upstream before applying the check's answer.
type Built struct {
	Check    *authv3.CheckRequest
	Upstream Headers
	Method   string
	Path     string
}

// Describe is the request as a test failure names it: "GET /agents".
func (b Built) Describe() string {
	p := b.Path
	if len(p) > 96 {
		p = p[:96] + "..."
	}
	return strings.TrimSpace(b.Method + " " + p)
}

// BuildRequest shapes req as Envoy's ext_authz filter would (README
// "Request", ENVOY-NOTES §1).
//
// It is this package's own model of Envoy, written from those documents,
// and deliberately not envoy.NewCheckRequest, which the check command, the
// policy API and authz-bench share: the black-box suite must not share the
// code under test (package doc; TestHarnessImportsNoServicePackage), or a
// wrong idea of what Envoy sends, built into both, would pass unseen. The
// two models meet only at the fixtures both are checked against. tokens maps "token"/"token2" to the minted
// tokens for the {token}/{token2} placeholders; when tokens["token"] is set
// and no header mentions {token}, "authorization: Bearer <token>" is added.
func BuildRequest(req conformance.Request, tokens map[string]string) (Built, error) {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	b := Built{Method: method, Path: req.Path}
	switch req.Omit {
	case "attributes":
		b.Check = &authv3.CheckRequest{}
		return b, nil
	case "http":
		b.Check = &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Time: timestamppb.Now()},
		}}
		return b, nil
	case "":
	default:
		return Built{}, fmt.Errorf("request.omit %q: want \"http\" or \"attributes\"", req.Omit)
	}

	replace := func(v string) (string, error) {
		for _, name := range []string{"token2", "token"} {
			ph := "{" + name + "}"
			if !strings.Contains(v, ph) {
				continue
			}
			t, ok := tokens[name]
			if !ok {
				return "", fmt.Errorf("header value mentions %s but the vector has no %s", ph, name)
			}
			v = strings.ReplaceAll(v, ph, t)
		}
		return v, nil
	}

	var given []conformance.HeaderLine // the vector's own lines, keys lower-cased
	mentionsToken := false
	for _, l := range append(append([]conformance.HeaderLine{}, req.Headers...), req.HeaderLines...) {
		if strings.Contains(l.Value, "{token}") {
			mentionsToken = true
		}
		v, err := replace(l.Value)
		if err != nil {
			return Built{}, err
		}
		key := strings.ToLower(l.Key)
		if key == "host" { // HTTP/1 Host becomes :authority in Envoy's codec
			key = ":authority"
		}
		given = append(given, conformance.HeaderLine{Key: key, Value: v})
	}
	if t, ok := tokens["token"]; ok && !mentionsToken {
		given = append(given, conformance.HeaderLine{Key: "authorization", Value: "Bearer " + t})
	}

	has := func(key string) (string, bool) {
		for _, l := range given {
			if l.Key == key {
				return l.Value, true
			}
		}
		return "", false
	}
	authority, ok := has(":authority")
	if !ok {
		authority = DefaultAuthority
	}
	scheme, ok := has(":scheme")
	if !ok {
		scheme = DefaultScheme
	}
	var lines []conformance.HeaderLine
	// Pseudo-headers first, as in Envoy's header map.
	for _, ph := range []conformance.HeaderLine{{Key: ":authority", Value: authority}, {Key: ":method", Value: method}, {Key: ":path", Value: req.Path}, {Key: ":scheme", Value: scheme}} {
		if _, ok := has(ph.Key); !ok {
			lines = append(lines, ph)
		}
	}
	lines = append(lines, given...)
	for _, d := range []conformance.HeaderLine{{Key: "user-agent", Value: DefaultUserAgent}, {Key: "x-forwarded-proto", Value: scheme}, {Key: "x-request-id", Value: newRequestID()}} {
		if _, ok := has(d.Key); !ok {
			lines = append(lines, d)
		}
	}

	httpReq := &authv3.AttributeContext_HttpRequest{
		Id:       newStreamID(),
		Method:   method,
		Path:     req.Path,
		Host:     authority,
		Scheme:   scheme,
		Protocol: "HTTP/1.1",
	}
	if req.RawHeaders {
		hm := &corev3.HeaderMap{}
		for _, l := range lines {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: l.Key, RawValue: []byte(l.Value)})
		}
		httpReq.HeaderMap = hm
	} else {
		httpReq.Headers = JoinHeaders(lines)
	}
	// README "Request": client_address is the client address Envoy reports.
	clientIP := "127.0.0.1"
	if req.ClientAddress != "" {
		clientIP = req.ClientAddress
	}
	b.Check = &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: socketAddress(clientIP, 40000)},
		Destination: &authv3.AttributeContext_Peer{
			Address: socketAddress("127.0.0.1", 8080),
		},
		Request: &authv3.AttributeContext_Request{Time: timestamppb.New(time.Now()), Http: httpReq},
	}}
	for _, l := range lines {
		b.Upstream = append(b.Upstream, Header{Key: l.Key, Value: l.Value, FromClient: true})
	}
	return b, nil
}

// JoinHeaders is Envoy's default headers map: repeated keys joined with ","
// in order (empty values count), non-UTF-8 bytes replaced by "!".
func JoinHeaders(lines []conformance.HeaderLine) map[string]string {
	out := make(map[string]string, len(lines))
	for _, l := range lines {
		v := sanitizeUTF8(l.Value)
		if prev, ok := out[l.Key]; ok {
			out[l.Key] = prev + "," + v
			continue
		}
		out[l.Key] = v
	}
	return out
}

func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			b.WriteByte('!')
			i++
			continue
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// newRequestID is a random UUID-shaped x-request-id, as Envoy generates.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newStreamID is a random decimal uint64, like Envoy's stream ids.
func newStreamID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprint(binary.BigEndian.Uint64(b[:]))
}
