package scopes

import "strings"

// Shadow is a custom pattern that an earlier pattern of the same method
// covers: the table tries patterns in order (docs/CONTRACT.md §5), so the
// custom rule can never match a request that is not its exact key.
type Shadow struct {
	Rule Rule // the shadowed custom rule
	By   Rule // the earlier pattern that takes its requests
}

// Shadowed returns the custom glob rules that an earlier glob of the same
// method covers, in table order. Coverage is judged on sample paths built
// from the later pattern (each wildcard replaced by several probes, and the
// pattern's own text): an earlier glob matching them all is taken to match
// every path the later one does. That is a heuristic for a warning, never a
// reason to refuse a configuration.
func (t *Table) Shadowed() []Shadow {
	var out []Shadow
	for _, mi := range t.methods {
		for k, gr := range mi.globs {
			r := &t.rules[gr.rule]
			if !r.Custom {
				continue
			}
			samples := gr.glob.samples()
			for _, earlier := range mi.globs[:k] {
				if matchesAll(&earlier.glob, samples) {
					out = append(out, Shadow{Rule: r.Rule, By: t.rules[earlier.rule].Rule})
					break
				}
			}
		}
	}
	return out
}

// Overlapping returns the rules of which g matches some path: the routes an
// excluded-route glob g would open without a credential. Rules are judged
// on the same samples as Shadowed.
func (t *Table) Overlapping(g Glob) []Rule {
	var out []Rule
	for i := range t.rules {
		r := &t.rules[i]
		rg, err := CompileGlob(r.Pattern)
		if err != nil {
			continue // compiled once already; cannot happen
		}
		for _, s := range rg.samples() {
			if g.Match(s) {
				out = append(out, r.Rule)
				break
			}
		}
	}
	return out
}

func matchesAll(g *Glob, samples []string) bool {
	for _, s := range samples {
		if !g.Match(s) {
			return false
		}
	}
	return len(samples) > 0
}

// samplePaths are what a '*' becomes in samples: empty, one segment, across
// a "/", and unusual characters.
var samplePaths = [...]string{"", "x", "x/y", "-_.~:0"}

// samples returns paths g matches: its own text, and for each probe of
// samplePaths the pattern with every '*' replaced by it, '?' by a character
// and a class by a character it accepts.
func (g *Glob) samples() []string {
	out := []string{g.pattern}
	if g.literal {
		return out
	}
	for _, probe := range samplePaths {
		var b strings.Builder
		for _, op := range g.ops {
			switch op.kind {
			case opLiteral:
				b.WriteString(op.lit)
			case opAny:
				b.WriteByte('q')
			case opClass:
				c, ok := g.classes[op.class].sample()
				if !ok {
					return out
				}
				b.WriteRune(c)
			case opStar:
				b.WriteString(probe)
			}
		}
		out = append(out, b.String())
	}
	return out
}

// sample returns a printable ASCII character the class accepts.
func (c *charClass) sample() (rune, bool) {
	for r := rune('a'); r <= 'z'; r++ {
		if c.matches(r) {
			return r, true
		}
	}
	for r := rune('!'); r <= '~'; r++ {
		if c.matches(r) {
			return r, true
		}
	}
	return 0, false
}
