package authz

import (
	"fmt"
	"strings"
)

// tokenSource says where the credential is read from (jwt.token_source).
type tokenSource uint8

const (
	sourceHeader tokenSource = iota
	sourceCookie
	sourceBoth
)

// parseTokenSource reads jwt.token_source; "" is the default, header.
func parseTokenSource(s string) (tokenSource, error) {
	switch s {
	case "", "header":
		return sourceHeader, nil
	case "cookie":
		return sourceCookie, nil
	case "both":
		return sourceBoth, nil
	}
	return 0, fmt.Errorf("%q must be header, cookie or both", s)
}

// credentials extracts the caller's credential from a request's headers.
// It is built once per snapshot and only read afterwards.
type credentials struct {
	source tokenSource
	header string // lower-case header name
	cookie string // cookie name, case-sensitive (RFC 6265)
	// missing is the docs/CONTRACT.md §5 detail when no credential is present.
	missing string
}

func newCredentials(source tokenSource, header, cookie string) credentials {
	if header == "" {
		header = defaultHeader
	}
	if cookie == "" {
		cookie = defaultCookie
	}
	c := credentials{source: source, header: strings.ToLower(header), cookie: cookie}
	switch source {
	case sourceCookie:
		c.missing = "JWT cookie '" + cookie + "' missing"
	case sourceBoth:
		c.missing = "JWT token missing from both Authorization header and '" + cookie + "' cookie"
	default:
		// docs/CONTRACT.md §5: the same message whatever the header's name.
		c.missing = "Authorization header missing"
	}
	return c
}

// token returns the credential of h from the configured source, header
// first for "both". ok is false when there is none.
func (c *credentials) token(h map[string]string) (tok string, ok bool) {
	if c.source != sourceCookie {
		if tok, ok = bearer(h[c.header]); ok || c.source == sourceHeader {
			return tok, ok
		}
	}
	return cookieValue(h["cookie"], c.cookie)
}

// headerToken returns the credential of the configured header only.
func (c *credentials) headerToken(h map[string]string) (string, bool) {
	return bearer(h[c.header])
}

// bearer reads a header credential (docs/CONTRACT.md §5): "Bearer <token>"
// with "Bearer" in any case followed by one or more spaces (RFC 6750: a tab
// is not a separator), or a bare token. An empty value, or "Bearer" followed
// by nothing but spaces, is no credential. "Bearer<token>" (no space) and
// "Bearer\t<token>" are bare tokens, which then fail verification.
func bearer(v string) (string, bool) {
	v = trimSpace(v)
	if len(v) >= 6 && strings.EqualFold(v[:6], "bearer") {
		if len(v) == 6 {
			return "", false
		}
		if v[6] == ' ' {
			// After the separator, surrounding white space is no part of
			// a token (a token never holds any).
			v = trimSpace(v[7:])
		}
	}
	return v, v != ""
}

// cookieValue finds the first non-empty cookie named name in a Cookie
// header ("a=b; c=d"; repeated Cookie headers joined with "," or "; ").
// It does not allocate.
func cookieValue(header, name string) (string, bool) {
	for header != "" {
		var part string
		if i := strings.IndexAny(header, ";,"); i >= 0 {
			part, header = header[:i], header[i+1:]
		} else {
			part, header = header, ""
		}
		k, v, found := strings.Cut(part, "=")
		if !found || trimSpace(k) != name {
			continue
		}
		v = trimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if v != "" {
			return v, true
		}
	}
	return "", false
}

// trimSpace trims HTTP optional whitespace (spaces and tabs).
func trimSpace(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
