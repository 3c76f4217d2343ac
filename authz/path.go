package authz

import "unicode/utf8"

// normalizePath turns a raw request target (Envoy's :path: path plus query,
// undecoded) into the path the route table and the excluded routes are
// matched against, as docs/CONTRACT.md §5 defines it:
//
//   - the query and the fragment are removed;
//   - the path is percent-decoded exactly once (%252F becomes the literal
//     "%2F" inside a segment, which is not ambiguous);
//   - a trailing slash is dropped, except for "/".
//
// It reports ok=false for an ambiguous path, which Decide denies with 400
// "Malformed request path" before looking at any credential: a "." or ".."
// segment (also when written %2e), an empty segment ("//"), a backslash (raw or
// %5C), a NUL or any other C0 control character or DEL (raw or encoded), an
// encoded "/" (%2F), an invalid percent escape, a result that is not valid
// UTF-8, or a target that does not start with "/".
//
// Why so strict: the upstream (or a proxy in between) may decode, merge or
// resolve such paths differently from us, so a path we read as /public/x could
// reach the upstream as /config. Refusing every ambiguity makes our reading
// the only possible one.
//
// normalizePath does not allocate when the path holds no percent escape: the
// result is then a substring of raw.
func normalizePath(raw string) (string, bool) {
	end := len(raw)
	escapes := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '?' || c == '#' {
			end = i
			break
		}
		if c == '%' {
			escapes = true
		}
	}
	p := raw[:end]
	if len(p) == 0 || p[0] != '/' {
		return "", false
	}
	if escapes {
		var ok bool
		if p, ok = decodePath(p); !ok {
			return "", false
		}
	} else if !validRawPath(p) {
		return "", false
	}
	if !utf8.ValidString(p) {
		return "", false
	}
	return checkSegments(p)
}

// validRawPath reports whether p (no percent escape in it) is free of
// backslashes and control characters.
func validRawPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if forbiddenPathByte(p[i]) {
			return false
		}
	}
	return true
}

// forbiddenPathByte reports the bytes that make a path ambiguous wherever
// they appear, raw or decoded: a backslash, C0 controls (NUL included) and DEL.
func forbiddenPathByte(c byte) bool {
	return c < 0x20 || c == 0x7f || c == '\\'
}

// decodePath percent-decodes p once. An invalid escape, an encoded "/", or a
// forbidden byte (raw or decoded) makes it ambiguous.
func decodePath(p string) (string, bool) {
	buf := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) {
				return "", false
			}
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			c = hi<<4 | lo
			if c == '/' {
				// An encoded slash inside a segment: some servers split on it,
				// others do not.
				return "", false
			}
			i += 2
		}
		if forbiddenPathByte(c) {
			return "", false
		}
		buf = append(buf, c)
	}
	return string(buf), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// checkSegments rejects dot and empty segments in the decoded path p (which
// starts with "/") and drops one trailing slash. Since an encoded "/" is
// refused, the segments of the decoded path are those of the raw one.
func checkSegments(p string) (string, bool) {
	if p == "/" {
		return p, true
	}
	if p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch p[start:i] {
		case "", ".", "..":
			return "", false
		}
		start = i + 1
	}
	return p, true
}

// hasTrailingSlash reports whether the path of the raw request target (the
// query and fragment removed) ends with a "/" that normalizePath drops: the
// excluded routes try the path with it too (docs/CONTRACT.md §5).
func hasTrailingSlash(raw string) bool {
	end := len(raw)
	for i := 0; i < len(raw); i++ {
		if raw[i] == '?' || raw[i] == '#' {
			end = i
			break
		}
	}
	return end > 1 && raw[end-1] == '/'
}
