package authz

import "strings"

// IsHTTPToken reports whether s is an RFC 9110 token (§5.6.2): the grammar
// of methods, header names and cookie names. Used for configuration
// checks, request methods and header names alike.
func IsHTTPToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
