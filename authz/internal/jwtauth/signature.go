package jwtauth

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jws"
)

// This file owns signature verification: the compact-JWS shape check, the
// fast path that reads an ordinary protected header itself and checks the
// signature with jwx's per-algorithm verifier, and jws.Verify for every
// other header. Keys come from the keyRing (keyring.go) on both paths.

// verifySignature verifies raw, a token compactShape accepted, and returns
// its payload; its errors are jws.Verify's (verifyFailure maps both). The
// protected header is read here (compactHeader) rather than by jwx's
// generic header decoding, which cost as much as the HS256 signature
// itself; keys are selected by the same keyRing.appendKeys and checked
// with jwx's verifier of the algorithm, over the token's own signing
// input (the canonical base64url compactShape demands is what jws.Verify
// re-encodes). A header compactHeader does not take goes to jws.Verify
// whole, so both paths accept exactly the same tokens (FuzzVerifySignature).
func (v *Verifier) verifySignature(ctx context.Context, raw string) ([]byte, error) {
	hdrEnd := strings.IndexByte(raw, '.')
	sigStart := strings.LastIndexByte(raw, '.') + 1
	enc := base64.RawURLEncoding
	hl := enc.DecodedLen(hdrEnd)
	pl := enc.DecodedLen(sigStart - 1 - (hdrEnd + 1))
	// One allocation: the token's bytes (the signing input is a prefix),
	// then the decoded header, payload and signature.
	buf := make([]byte, len(raw)+hl+pl+enc.DecodedLen(len(raw)-sigStart))
	tok := buf[:copy(buf, raw)]
	hdr, payload, sig := buf[len(raw):len(raw)+hl], buf[len(raw)+hl:len(raw)+hl+pl], buf[len(raw)+hl+pl:]
	if _, err := enc.Decode(hdr, tok[:hdrEnd]); err != nil {
		return v.verifyJWS(ctx, raw)
	}
	alg, kid, ok := compactHeader(hdr)
	if !ok {
		return v.verifyJWS(ctx, raw)
	}
	if !v.ring.allowed.has(alg) {
		return nil, errAlgNotAllowed
	}
	input := tok[:sigStart-1]
	if _, err := enc.Decode(payload, input[hdrEnd+1:]); err != nil {
		return v.verifyJWS(ctx, raw)
	}
	if _, err := enc.Decode(sig, tok[sigStart:]); err != nil {
		return v.verifyJWS(ctx, raw)
	}
	var kbuf [8]any
	keys := v.ring.appendKeys(ctx, kbuf[:0], alg, kid)
	if len(keys) == 0 {
		return nil, errNoKey
	}
	sv := v.sigs[alg]
	for _, k := range keys {
		if sv.Verify(input, sig, k) == nil {
			return payload, nil
		}
	}
	return nil, errSignature
}

// verifyJWS is jws.Verify with the ring as key provider.
func (v *Verifier) verifyJWS(ctx context.Context, raw string) ([]byte, error) {
	opts := v.verifyOpts
	if v.ring.jwks != nil {
		opts = append(opts[:len(opts):len(opts)], jws.WithContext(ctx))
	}
	return jws.Verify([]byte(raw), opts...)
}

// compactHeader reads a decoded protected header of the common shape: a
// JSON object whose members are all among alg, kid, typ, cty, jku, x5u,
// x5t and x5t#S256, each a string, with an alg we implement. For such a
// header jwx's decoding gives the same alg and kid (the last of a repeated
// member, escapes decoded, invalid UTF-8 replaced as encoding/json does)
// and no crit, b64, jwk or x5c. ok is false for any other header (crit,
// b64, jwk, x5c, private parameters, a missing or unknown alg, a value of
// another type, not an object): jws.Verify then decides, as before.
// jku and x5u are read only to be ignored: keys are never fetched from them.
//
// White space around the object also sends the token to jws.Verify: jwx
// signs over the header re-encoded from the bytes encoding/json hands its
// decoder, which are the object without it, so it refuses such a token
// that RFC 7515 would accept, and so must we.
func compactHeader(hdr []byte) (alg sigAlg, kid string, ok bool) {
	if len(hdr) < 2 || hdr[0] != '{' || hdr[len(hdr)-1] != '}' {
		return 0, "", false
	}
	var buf [8]rawClaim
	members, isObject := scanClaims(buf[:0], hdr)
	if !isObject {
		return 0, "", false
	}
	for _, m := range members {
		switch string(m.name) {
		case "alg", "kid", "typ", "cty", "jku", "x5u", "x5t", "x5t#S256":
		default:
			return 0, "", false
		}
		if m.raw[0] != '"' {
			return 0, "", false
		}
	}
	algRaw := members.find("alg")
	if algRaw == nil {
		return 0, "", false
	}
	if algRaw.plain {
		alg, ok = parseAlg(string(algRaw.raw[1 : len(algRaw.raw)-1]))
	} else {
		name, _ := jsonString(algRaw.raw)
		alg, ok = parseAlg(name)
	}
	if !ok {
		return 0, "", false
	}
	if kidRaw := members.find("kid"); kidRaw != nil {
		if kid, ok = jsonString(kidRaw.raw); !ok {
			return 0, "", false
		}
	}
	return alg, kid, true
}

// compactShape checks that raw is header.payload.signature, each part
// non-empty, canonical unpadded base64url: the only form accepted (no JSON
// serialization, no unsigned token). Canonical matters: jws re-encodes what
// it decoded to compute the signing input, so a part whose unused low bits
// were changed would otherwise verify as a second spelling of the same
// token. It returns "" or the reason.
func compactShape(raw string) string {
	if raw == "" {
		return "empty token"
	}
	start := 0
	for parts := 1; ; parts++ {
		end := strings.IndexByte(raw[start:], '.')
		last := end < 0
		if last {
			end = len(raw)
		} else {
			end += start
		}
		if parts > 3 {
			return "not a JWT (expected three dot-separated parts)"
		}
		if end == start {
			if parts == 3 && last {
				return "token is not signed"
			}
			return "not a JWT (empty part)"
		}
		if !base64URLChars(raw[start:end]) || !canonicalTail(raw[start:end]) {
			return "not a JWT (not base64url)"
		}
		if last {
			if parts != 3 {
				return "not a JWT (expected three dot-separated parts)"
			}
			return ""
		}
		start = end + 1
	}
}

// canonicalTail reports whether s, non-empty and all base64url
// characters, has a length unpadded base64url can have and a last
// character without stray bits.
func canonicalTail(s string) bool {
	last, _ := base64URLValue(s[len(s)-1])
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		return last&0x0f == 0
	case 3:
		return last&0x03 == 0
	}
	return true
}

// The base64url alphabet as a 256-bit set, in four words of 64: '-' and
// '0'-'9' in the first; 'A'-'Z', '_' and 'a'-'z' in the second.
const (
	base64URLLow  uint64 = 1<<'-' | 0x3ff<<'0'
	base64URLHigh uint64 = 0x3ffffff<<('A'-64) | 1<<('_'-64) | 0x3ffffff<<('a'-64)
)

// base64URLChar reports whether c is in the base64url alphabet.
func base64URLChar(c byte) bool {
	set := [4]uint64{base64URLLow, base64URLHigh}
	return set[c>>6]>>(c&63)&1 != 0
}

// base64URLChars reports whether every byte of s is in the base64url
// alphabet, without a branch per byte (tokens are checked whole on every
// request).
func base64URLChars(s string) bool {
	set := [4]uint64{base64URLLow, base64URLHigh}
	ok := uint64(1)
	for i := 0; i < len(s); i++ {
		ok &= set[s[i]>>6] >> (s[i] & 63)
	}
	return ok&1 != 0
}

func base64URLValue(c byte) (byte, bool) {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A', true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26, true
	case '0' <= c && c <= '9':
		return c - '0' + 52, true
	case c == '-':
		return 62, true
	case c == '_':
		return 63, true
	}
	return 0, false
}
