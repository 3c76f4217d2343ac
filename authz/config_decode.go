package authz

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one configuration problem, named by its YAML path
// ("jwt.leeway", "scope_mappings[\"GET /x\"][1]"): the one error type of
// a configuration problem. Load returns every problem it finds joined with
// errors.Join; New and Reload return the few only they can find.
type FieldError struct {
	// Field is the YAML path of the offending setting.
	Field string
	// Line is the line in the configuration file, 0 when unknown (a value
	// from the environment, a flag, or a cross-field rule).
	Line int
	Err  error
}

func (e *FieldError) Error() string {
	msg := e.Field + ": " + e.Err.Error()
	if e.Line > 0 {
		msg += " (line " + strconv.Itoa(e.Line) + ")"
	}
	return msg
}

func (e *FieldError) Unwrap() error { return e.Err }

// decoder walks a YAML node tree alongside the Go value it fills, so that
// every problem is reported with its YAML path and all problems are found in
// one pass. yaml.v3's own struct decoding (even with KnownFields) stops at
// errors without a path and cannot name the field a custom unmarshaler (a
// bad duration) failed on.
type decoder struct {
	errs []error
}

func (d *decoder) fail(path string, n *yaml.Node, err error) {
	if path == "" {
		path = "config" // the document itself
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &FieldError{Field: path, Line: line, Err: err})
}

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isLeaf reports whether values of t decode themselves.
func isLeaf(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(yamlUnmarshaler) || p.Implements(textUnmarshaler)
}

// decode fills v (addressable) from n; path is n's YAML path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// "field:" with no value keeps the default.
		return
	}
	t := v.Type()
	switch {
	case isLeaf(t):
		d.leaf(n, v, path)
	case t.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n, errors.New("must be a list"))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case t.Kind() == reflect.Pointer:
		e := reflect.New(t.Elem())
		before := len(d.errs)
		d.decode(n, e.Elem(), path)
		if len(d.errs) == before {
			v.Set(e)
		}
	default:
		d.leaf(n, v, path)
	}
}

// mapping fills the struct v from the mapping node n: every key must name a
// field (by its yaml tag) and appear once.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	d.mappingOf(n, []reflect.Value{v}, path)
}

// root fills the structs vs from the document's root mapping n, as one
// struct whose fields are the union of theirs (LoadOptions.Extra): a key
// names a field of exactly one of them. A name in two is a programming
// error, reported before anything is decoded.
func (d *decoder) root(n *yaml.Node, vs []reflect.Value) error {
	owner := make(map[string]reflect.Type)
	for _, v := range vs {
		for name := range yamlFields(v.Type()) {
			if t, dup := owner[name]; dup {
				return fmt.Errorf("authz: configuration key %q belongs to both %s and %s", name, t, v.Type())
			}
			owner[name] = v.Type()
		}
	}
	d.mappingOf(n, vs, "")
	return nil
}

// mappingOf is mapping over several structs whose fields share the
// mapping (root).
func (d *decoder) mappingOf(n *yaml.Node, vs []reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, errors.New("must be a mapping"))
		return
	}
	type target struct {
		v   reflect.Value
		idx int
	}
	fields := make(map[string]target)
	for _, v := range vs {
		for name, idx := range yamlFields(v.Type()) {
			fields[name] = target{v, idx}
		}
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		fieldPath := joinPath(path, name)
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k, errors.New("a key must be a string"))
			continue
		}
		f, ok := fields[name]
		if !ok {
			d.fail(fieldPath, k, errors.New("unknown field"))
			continue
		}
		if seen[name] {
			d.fail(fieldPath, k, errors.New("set twice"))
			continue
		}
		seen[name] = true
		d.decode(val, f.v.Field(f.idx), fieldPath)
	}
}

// leaf decodes a scalar-like value with yaml.v3 itself (custom unmarshalers
// included) and names the field on failure.
func (d *decoder) leaf(n *yaml.Node, v reflect.Value, path string) {
	kind := v.Kind()
	if !isLeaf(v.Type()) && n.Kind != yaml.ScalarNode {
		switch kind {
		case reflect.String:
			d.fail(path, n, errors.New("must be a string"))
			return
		case reflect.Bool:
			d.fail(path, n, errors.New("must be true or false"))
			return
		}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.As(err, &te) && kind == reflect.Bool:
			d.fail(path, n, errors.New(strconv.Quote(n.Value)+" must be true or false"))
		case errors.As(err, &te) && (kind == reflect.Float64 || kind == reflect.Float32):
			d.fail(path, n, errors.New(strconv.Quote(n.Value)+" must be a number"))
		case errors.As(err, &te):
			d.fail(path, n, errors.New(typeErrorText(te)))
		default:
			d.nested(path, n, err)
		}
	}
}

// nested records err from a custom unmarshaler; FieldErrors it carries
// (scope_mappings names its own keys) get path in front of their field.
func (d *decoder) nested(path string, n *yaml.Node, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		fe, ok := e.(*FieldError)
		if !ok {
			d.fail(path, n, e)
			continue
		}
		f := *fe
		if strings.HasPrefix(f.Field, "[") {
			f.Field = path + f.Field
		} else {
			f.Field = joinPath(path, f.Field)
		}
		d.errs = append(d.errs, &f)
	}
}

// typeErrorText drops yaml's "line N: " prefixes (FieldError adds the line).
func typeErrorText(te *yaml.TypeError) string {
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if strings.HasPrefix(m, "line ") {
			if _, rest, ok := strings.Cut(m, ": "); ok {
				m = rest
			}
		}
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}

// yamlFields maps yaml tag names to field indexes of the struct type t.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

func joinPath(parent, name string) string {
	if !plainKey(name) {
		// An empty or odd key is quoted, so the path still names it.
		return parent + "[" + strconv.Quote(name) + "]"
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// plainKey reports whether name can stand in a dotted path as is.
func plainKey(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
