package jwtauth

import (
	"encoding/json"
)

// A minimal JSON reader for token payloads: it checks the whole payload is
// one JSON object (RFC 8259 grammar, nesting bounded) and indexes its
// top-level members as raw value slices, without copying or decoding the
// values. Claims are then read on demand. encoding/json into a
// map[string]json.RawMessage does the same work several times slower;
// FuzzClaimsScan checks the two agree.

// maxJSONDepth bounds nesting in a payload; real claims nest two or three
// levels.
const maxJSONDepth = 64

// rawClaim is one top-level member: its (unescaped) name and raw value.
// The name is a slice of the payload itself unless it had escapes, so
// indexing a payload copies nothing.
type rawClaim struct {
	name []byte
	raw  []byte
	at   int // the offset of raw in the payload
	// plain: raw is a string of printable ASCII without escapes, so its
	// value is raw without the quotes (what plainJSONString would say,
	// found while scanning).
	plain bool
}

// rawClaims are the members in document order.
type rawClaims []rawClaim

// claimsBuf is the member capacity scanClaims' callers keep on their stack:
// more than any real token carries, so the index allocates nothing.
const claimsBuf = 16

// get returns the raw value of name; the last one wins if it repeats, as
// in encoding/json.
func (c rawClaims) get(name string) ([]byte, bool) {
	if m := c.find(name); m != nil {
		return m.raw, true
	}
	return nil, false
}

// find returns the member name (the last one if it repeats), nil if absent.
func (c rawClaims) find(name string) *rawClaim {
	for i := len(c) - 1; i >= 0; i-- {
		// The first byte first: most claim names are three letters.
		if n := c[i].name; len(n) == len(name) && (len(n) == 0 || n[0] == name[0]) && string(n) == name {
			return &c[i]
		}
	}
	return nil
}

// scanClaims indexes payload, which must be exactly one JSON object
// (surrounding white space allowed), appending its members to dst[:0].
func scanClaims(dst rawClaims, payload []byte) (rawClaims, bool) {
	s := jsonScanner{b: payload}
	s.ws()
	if !s.consume('{') {
		return nil, false
	}
	out := dst[:0]
	s.ws()
	if s.consume('}') {
		s.ws()
		return out, s.i == len(s.b)
	}
	for {
		s.ws()
		start := s.i
		if !s.str() {
			return nil, false
		}
		name := s.b[start+1 : s.i-1]
		if !s.plain {
			n, isString := jsonString(s.b[start:s.i])
			if !isString {
				return nil, false
			}
			name = []byte(n)
		}
		s.ws()
		if !s.consume(':') {
			return nil, false
		}
		s.ws()
		vstart := s.i
		if !s.value(1) {
			return nil, false
		}
		out = append(out, rawClaim{name: name, raw: s.b[vstart:s.i], at: vstart, plain: s.b[vstart] == '"' && s.plain})
		s.ws()
		if s.consume(',') {
			continue
		}
		if !s.consume('}') {
			return nil, false
		}
		s.ws()
		return out, s.i == len(s.b)
	}
}

// arrayElems calls f with each element of the raw JSON array a (already
// validated by scanClaims) and its offset in a; it reports false when a is
// not an array.
func arrayElems(a []byte, f func(elem []byte, at int)) bool {
	s := jsonScanner{b: a}
	if !s.consume('[') {
		return false
	}
	s.ws()
	if s.consume(']') {
		return true
	}
	for {
		s.ws()
		start := s.i
		if !s.value(1) {
			return false
		}
		f(s.b[start:s.i], start)
		s.ws()
		if s.consume(',') {
			continue
		}
		return s.consume(']')
	}
}

type jsonScanner struct {
	b     []byte
	i     int
	plain bool // set by str
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value skips one JSON value.
func (s *jsonScanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxJSONDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		s.i++
		s.ws()
		if s.consume('}') {
			return true
		}
		for {
			s.ws()
			if !s.str() {
				return false
			}
			s.ws()
			if !s.consume(':') {
				return false
			}
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.consume(',') {
				continue
			}
			return s.consume('}')
		}
	case c == '[':
		s.i++
		s.ws()
		if s.consume(']') {
			return true
		}
		for {
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.consume(',') {
				continue
			}
			return s.consume(']')
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// str skips a string: no raw control characters, valid escapes. It sets
// s.plain to whether the string was printable ASCII without escapes (its
// own value, as plainJSONString says).
func (s *jsonScanner) str() bool {
	if !s.consume('"') {
		return false
	}
	// The common bytes in a local loop; the index goes back to s only at
	// an escape or the end.
	b, i, plain := s.b, s.i, true
	for i < len(b) {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			if c >= 0x7f {
				plain = false
			}
			i++
			continue
		}
		switch {
		case c == '"':
			s.i, s.plain = i+1, plain
			return true
		case c < 0x20:
			return false
		}
		// c == '\\'
		plain = false
		i++
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if len(b)-i < 5 {
				return false
			}
			for _, h := range b[i+1 : i+5] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					return false
				}
			}
			i += 5
		default:
			return false
		}
	}
	return false
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.consume('.') {
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if !s.consume('+') {
			s.consume('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits skips one or more digits.
func (s *jsonScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// plainJSONString returns the bytes between the quotes of a JSON string
// value that is printable ASCII without escapes, which is its own value;
// ok is false for anything else (other strings need jsonString).
func plainJSONString(raw []byte) (inner []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x7f {
			return nil, false
		}
	}
	return raw[1 : len(raw)-1], true
}

// payloadText hands out the plain string values of a payload as slices of
// one copy of it, made on first use: one allocation for the user id,
// session id and scopes together rather than one each.
type payloadText struct {
	b []byte
	s string
}

// slice returns payload[from:to] as a string.
func (p *payloadText) slice(from, to int) string {
	if p.s == "" {
		p.s = string(p.b)
	}
	return p.s[from:to]
}

// jsonString reads a JSON string value (raw includes the quotes).
func jsonString(raw []byte) (string, bool) {
	if inner, ok := plainJSONString(raw); ok {
		return string(inner), true
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return "", false
	}
	return str, true
}
