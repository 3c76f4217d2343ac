package scopes

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadPattern reports a glob that does not compile.
var ErrBadPattern = errors.New("syntax error in pattern")

// Glob is one compiled route pattern, Python-fnmatch style (docs/CONTRACT.md §5):
//
//	'*'       any run of characters, '/' included
//	'?'       any one character
//	[abc]     one character of the set; ranges as in [a-z]; a leading ']' is literal
//	[!abc]    one character not in the set
//	{name}    a path parameter, the same as '*'
//
// Every other character is literal; there is no escape character. Unlike
// Python, an unterminated '[' or '{' and an empty "{}" are errors rather than
// literals: in a route they are typos. Characters are UTF-8 runes.
//
// The zero Glob matches only the empty string. A Glob is immutable and safe for
// concurrent use.
type Glob struct {
	pattern string
	ops     []globOp
	classes []charClass
	literal bool // no metacharacters: Match is string equality
}

type opKind uint8

const (
	opLiteral opKind = iota
	opAny            // '?'
	opClass          // '[...]'
	opStar           // '*' or '{param}'
)

type globOp struct {
	kind  opKind
	lit   string // opLiteral
	class int    // opClass: index into Glob.classes
}

type charClass struct {
	negate bool
	ranges []runeRange
}

type runeRange struct{ lo, hi rune }

func (c *charClass) matches(r rune) bool {
	in := false
	for _, rg := range c.ranges {
		if rg.lo <= r && r <= rg.hi {
			in = true
			break
		}
	}
	return in != c.negate
}

// CompileGlob compiles pattern. The pattern must be valid UTF-8.
func CompileGlob(pattern string) (Glob, error) {
	if !utf8.ValidString(pattern) {
		return Glob{}, fmt.Errorf("%w: %q is not valid UTF-8", ErrBadPattern, pattern)
	}
	g := Glob{pattern: pattern, literal: true}
	lit := 0 // start of the pending literal run
	flush := func(end int) {
		if end > lit {
			g.ops = append(g.ops, globOp{kind: opLiteral, lit: pattern[lit:end]})
		}
	}
	star := func() {
		// Adjacent stars are one star.
		if n := len(g.ops); n == 0 || g.ops[n-1].kind != opStar {
			g.ops = append(g.ops, globOp{kind: opStar})
		}
	}
	for i := 0; i < len(pattern); {
		switch pattern[i] {
		case '*':
			flush(i)
			star()
			i++
		case '?':
			flush(i)
			g.ops = append(g.ops, globOp{kind: opAny})
			i++
		case '[':
			flush(i)
			class, end, err := parseClass(pattern, i)
			if err != nil {
				return Glob{}, err
			}
			g.classes = append(g.classes, class)
			g.ops = append(g.ops, globOp{kind: opClass, class: len(g.classes) - 1})
			i = end
		case '{':
			flush(i)
			end := strings.IndexByte(pattern[i+1:], '}')
			if end < 0 {
				return Glob{}, fmt.Errorf("%w: unterminated '{' at offset %d in %q", ErrBadPattern, i, pattern)
			}
			name := pattern[i+1 : i+1+end]
			if name == "" {
				return Glob{}, fmt.Errorf("%w: empty parameter \"{}\" at offset %d in %q", ErrBadPattern, i, pattern)
			}
			if strings.ContainsAny(name, "/{[") {
				return Glob{}, fmt.Errorf("%w: parameter at offset %d in %q holds '/', '{' or '['", ErrBadPattern, i, pattern)
			}
			star()
			i += end + 2
		default:
			i++
			continue
		}
		g.literal = false
		lit = i
	}
	flush(len(pattern))
	return g, nil
}

// parseClass parses the class that opens at pattern[open] == '[' and returns it
// with the offset just past its ']'.
func parseClass(pattern string, open int) (charClass, int, error) {
	var c charClass
	j := open + 1
	if j < len(pattern) && pattern[j] == '!' {
		c.negate = true
		j++
	}
	start := j
	if j < len(pattern) && pattern[j] == ']' {
		j++ // a leading ']' is a member
	}
	closing := strings.IndexByte(pattern[j:], ']')
	if closing < 0 {
		return charClass{}, 0, fmt.Errorf("%w: unterminated '[' at offset %d in %q", ErrBadPattern, open, pattern)
	}
	body := pattern[start : j+closing]
	for k := 0; k < len(body); {
		lo, w := utf8.DecodeRuneInString(body[k:])
		k += w
		// "lo-hi" when a '-' is followed by another member; a '-' first or
		// last is literal. A reversed range matches nothing, as in Python.
		if k+1 < len(body) && body[k] == '-' {
			hi, w2 := utf8.DecodeRuneInString(body[k+1:])
			c.ranges = append(c.ranges, runeRange{lo, hi})
			k += 1 + w2
			continue
		}
		c.ranges = append(c.ranges, runeRange{lo, lo})
	}
	return c, j + closing + 1, nil
}

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// Literal reports whether the pattern has no metacharacters, so that it
// matches exactly one string, itself.
func (g Glob) Literal() bool { return g.literal }

// Match reports whether s matches the whole pattern. It does not allocate.
// s is expected to be valid UTF-8 (a normalised path is); an invalid byte is one
// character that only '*', '?' or a negated class can match.
func (g Glob) Match(s string) bool { return g.match(s) }

// prefix is the literal text every match starts with.
func (g *Glob) prefix() string {
	if g.literal {
		return g.pattern
	}
	if len(g.ops) > 0 && g.ops[0].kind == opLiteral {
		return g.ops[0].lit
	}
	return ""
}

func (g *Glob) match(s string) bool {
	if g.literal {
		return s == g.pattern
	}
	ops := g.ops
	pi, si := 0, 0
	// Backtrack point: the op after the last star seen, and where in s that
	// star's match currently ends. Only the last star ever needs to be
	// revisited, because a star can absorb whatever an earlier one would.
	starPi, starSi := -1, 0
	for {
		if pi < len(ops) {
			op := &ops[pi]
			switch op.kind {
			case opStar:
				pi++
				if pi == len(ops) {
					return true // a trailing star takes the rest
				}
				starPi, starSi = pi, si
				continue
			case opLiteral:
				if strings.HasPrefix(s[si:], op.lit) {
					si += len(op.lit)
					pi++
					continue
				}
			case opAny:
				if si < len(s) {
					_, w := utf8.DecodeRuneInString(s[si:])
					si += w
					pi++
					continue
				}
			case opClass:
				if si < len(s) {
					r, w := utf8.DecodeRuneInString(s[si:])
					if g.classes[op.class].matches(r) {
						si += w
						pi++
						continue
					}
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last star take one more character and retry.
		if starPi < 0 || starSi >= len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starSi:])
		starSi += w
		pi, si = starPi, starSi
	}
}
