package envoy

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/agentos-authz/agentos-authz/authz"
)

// RequestSpec is one HTTP request as a client sends it through Envoy: the
// input of NewCheckRequest. The zero value is "GET /" without headers.
type RequestSpec struct {
	// Method is the method as the client sent it ("" means GET). Its case
	// is kept, as Envoy keeps it: only the exact "OPTIONS" is a preflight
	// (docs/CONTRACT.md §5 step 3), "options" is routed like any method.
	Method string
	// Path is the request target as the client sent it, query included,
	// not decoded ("" means "/").
	Path string
	// Host is the :authority ("" means the "host" or ":authority" line of
	// Headers, else "localhost").
	Host string
	// Scheme is the :scheme ("" means the ":scheme" line of Headers, else
	// "http").
	Scheme string
	// Protocol is attributes.request.http.protocol ("" means HTTP/1.1).
	Protocol string
	// Headers are the client's header lines in the order sent; names in any
	// case. Repeated names are joined as Envoy joins them.
	Headers []authz.Header
	// Token, when not empty, is a credential (a JWT, a service-account
	// token or the security key), placed where Config looks for one.
	Token string
	// Config says where Token goes (authz.Config.CredentialHeaders: the
	// jwt.header and the jwt.cookie cookie); nil means the defaults, the
	// authorization header and the access_token cookie, for a caller that
	// does not know the service's configuration.
	Config *authz.Config
	// RequestID is the x-request-id when Headers carry none; "" means a
	// random UUID, as Envoy's connection manager generates one.
	RequestID string
	// ClientAddr is attributes.source's address, the client Envoy reports:
	// an IP address, or IP and port ("203.0.113.7:51834"; port 0 when
	// absent). "" means none.
	ClientAddr string
	// Time is attributes.request.time (the zero value means now).
	Time time.Time
}

// Defaults of NewCheckRequest for what a RequestSpec leaves empty.
const (
	defaultMethod   = "GET"
	defaultPath     = "/"
	defaultHost     = "localhost"
	defaultScheme   = "http"
	defaultProtocol = "HTTP/1.1"
)

// NewCheckRequest builds the CheckRequest Envoy's ext_authz filter sends
// for the request spec describes, in its default mode
// (proto/envoy-fixtures/ENVOY-NOTES.md §1):
//
//   - http.method, path, host, scheme and protocol, each equal to its
//     pseudo-header (:method, :path, :authority, :scheme), all four in the
//     headers map;
//   - header names lower-cased; an HTTP/1 Host line becomes :authority
//     (Envoy's codec has no "host" header);
//   - repeated names joined with "," (no space) in order, empty values
//     included; cookie lines joined with "; " as Envoy joins its inline
//     cookie header;
//   - every byte of a value that is not UTF-8 replaced by "!", as Envoy's
//     sanitizeUtf8String does (a proto string must be UTF-8);
//   - the connection manager's x-forwarded-proto and x-request-id added
//     when the client sent none;
//   - the token, if any, placed by spec.Config.CredentialHeaders.
//
// Every caller that has no Envoy in front of it goes through this one
// function: the check command (offline and --server), the policy API's
// Explain (ExplainCheckRequest) and authz-bench. The result always has
// HTTP attributes; it belongs to the caller.
func NewCheckRequest(spec RequestSpec) *authv3.CheckRequest {
	h := make(map[string]string, len(spec.Headers)+6)
	for _, l := range spec.Headers {
		name := strings.ToLower(l.Name)
		if name == "" {
			continue
		}
		if name == "host" {
			name = ":authority"
		}
		v := sanitizeUTF8(l.Value)
		if prev, ok := h[name]; ok {
			sep := ","
			if name == "cookie" {
				sep = "; "
			}
			v = prev + sep + v
		}
		h[name] = v
	}
	// The spec's field, else the client's line, else the default.
	pseudo := func(name, field, def string) string {
		switch {
		case field != "":
			h[name] = sanitizeUTF8(field)
		case h[name] == "":
			h[name] = def
		}
		return h[name]
	}
	method := pseudo(":method", spec.Method, defaultMethod)
	path := pseudo(":path", spec.Path, defaultPath)
	host := pseudo(":authority", spec.Host, defaultHost)
	scheme := pseudo(":scheme", spec.Scheme, defaultScheme)
	if _, ok := h["x-forwarded-proto"]; !ok {
		h["x-forwarded-proto"] = scheme
	}
	if _, ok := h["x-request-id"]; !ok {
		id := spec.RequestID
		if id == "" {
			id = newRequestID()
		}
		h["x-request-id"] = sanitizeUTF8(id)
	}
	if spec.Token != "" {
		cfg := spec.Config
		if cfg == nil {
			cfg = &authz.Config{}
		}
		cfg.CredentialHeaders(h, sanitizeUTF8(spec.Token))
	}
	protocol := spec.Protocol
	if protocol == "" {
		protocol = defaultProtocol
	}
	at := spec.Time
	if at.IsZero() {
		at = time.Now()
	}
	attrs := &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Time: timestamppb.New(at),
		Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Host: host, Scheme: scheme, Protocol: protocol, Headers: h,
		},
	}}
	if spec.ClientAddr != "" {
		attrs.Source = &authv3.AttributeContext_Peer{Address: socketAddress(spec.ClientAddr)}
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// socketAddress is addr ("ip" or "ip:port") as Envoy reports a peer. A
// port that does not parse is 0: no decision reads it.
func socketAddress(addr string) *corev3.Address {
	ip, port := addr, uint64(0)
	if h, p, err := net.SplitHostPort(addr); err == nil {
		ip = h
		port, _ = strconv.ParseUint(p, 10, 16)
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// headerLines turns a header map, whose iteration order is random, into
// lines sorted by name, so that NewCheckRequest joins names differing only
// in case in a stable order (as FromCheckRequest's lowerKeys does).
func headerLines(m map[string]string) []authz.Header {
	out := make([]authz.Header, 0, len(m))
	for k, v := range m {
		out = append(out, authz.Header{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// sanitizeUTF8 replaces each byte of s that is not part of a valid UTF-8
// sequence with "!", as Envoy does before putting a value in the headers
// map (proto/envoy-fixtures/ENVOY-NOTES.md §1).
func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
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

// newRequestID is a random version 4 UUID, the shape of the x-request-id
// Envoy's connection manager generates.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
