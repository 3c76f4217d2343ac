package authzv1

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestGeneratedCodeMatchesProto fails when authz.proto changed without
// `make proto`: the messages, fields (name, number, type, cardinality),
// enums and RPCs declared in the .proto text must be exactly those of the
// descriptor compiled into the generated code. It reads the .proto with a
// small line parser for the subset this file uses, so it needs no buf at
// test time; `make lint` (proto-check) compares the generated files byte
// for byte with buf's output, comments included.
func TestGeneratedCodeMatchesProto(t *testing.T) {
	text, err := os.ReadFile("authz.proto")
	if err != nil {
		t.Fatal(err)
	}
	fromText, err := declarations(string(text))
	if err != nil {
		t.Fatal(err)
	}
	fromCode := descriptorDeclarations(File_agentos_authz_v1_authz_proto)
	slices.Sort(fromText)
	slices.Sort(fromCode)
	if !slices.Equal(fromText, fromCode) {
		t.Errorf("the generated code is stale: run make proto\nonly in authz.proto: %q\nonly in the generated code: %q",
			minus(fromText, fromCode), minus(fromCode, fromText))
	}
	if len(fromText) < 20 {
		t.Errorf("only %d declarations parsed from authz.proto: the parser missed them", len(fromText))
	}
}

var (
	reBlock = regexp.MustCompile(`^(message|enum|service) (\w+) \{`)
	reField = regexp.MustCompile(`^(repeated |optional )?(map<\s*\w+\s*,\s*[\w.]+\s*>|[\w.]+) (\w+) = (\d+);`)
	reValue = regexp.MustCompile(`^(\w+) = (\d+);`)
	reRPC   = regexp.MustCompile(`^rpc (\w+)\((\w+)\) returns \((\w+)\);`)
)

// declarations lists "message M field f 3 repeated string", "enum E V 1"
// and "rpc S.M Req Resp" lines of a .proto without nested types.
func declarations(text string) ([]string, error) {
	var out []string
	kind, name := "", ""
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		if m := reBlock.FindStringSubmatch(line); m != nil {
			kind, name = m[1], m[2]
			if kind == "message" {
				out = append(out, "message "+name)
			}
			if strings.HasSuffix(line, "{}") {
				kind = ""
			}
			continue
		}
		if line == "}" {
			kind = ""
			continue
		}
		switch kind {
		case "message":
			m := reField.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("authz.proto:%d: %q is not a field this test reads", n+1, line)
			}
			card := strings.TrimSpace(m[1])
			typ := m[2]
			if strings.HasPrefix(typ, "map<") {
				card, typ = "map", strings.Join(strings.Fields(strings.NewReplacer("map<", "", ">", "", ",", " ").Replace(typ)), ",")
			}
			if card == "" {
				card = "singular"
			}
			out = append(out, fmt.Sprintf("message %s field %s %s %s %s", name, m[3], m[4], card, typ))
		case "enum":
			m := reValue.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("authz.proto:%d: %q is not an enum value this test reads", n+1, line)
			}
			out = append(out, fmt.Sprintf("enum %s %s %s", name, m[1], m[2]))
		case "service":
			m := reRPC.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("authz.proto:%d: %q is not an rpc this test reads", n+1, line)
			}
			out = append(out, fmt.Sprintf("rpc %s.%s %s %s", name, m[1], m[2], m[3]))
		}
	}
	return out, nil
}

// descriptorDeclarations lists the same lines from the compiled descriptor.
func descriptorDeclarations(fd protoreflect.FileDescriptor) []string {
	var out []string
	typeName := func(f protoreflect.FieldDescriptor) string {
		switch f.Kind() {
		case protoreflect.MessageKind:
			d := f.Message()
			if d.ParentFile() == fd {
				return string(d.Name())
			}
			return string(d.FullName())
		case protoreflect.EnumKind:
			return string(f.Enum().Name())
		}
		return f.Kind().String()
	}
	for i := 0; i < fd.Messages().Len(); i++ {
		m := fd.Messages().Get(i)
		out = append(out, "message "+string(m.Name()))
		for j := 0; j < m.Fields().Len(); j++ {
			f := m.Fields().Get(j)
			card, typ := "singular", typeName(f)
			switch {
			case f.IsMap():
				card, typ = "map", typeName(f.MapKey())+","+typeName(f.MapValue())
			case f.IsList():
				card = "repeated"
			case f.HasPresence() && f.Kind() != protoreflect.MessageKind:
				card = "optional"
			}
			out = append(out, fmt.Sprintf("message %s field %s %d %s %s", m.Name(), f.Name(), f.Number(), card, typ))
		}
	}
	for i := 0; i < fd.Enums().Len(); i++ {
		e := fd.Enums().Get(i)
		for j := 0; j < e.Values().Len(); j++ {
			v := e.Values().Get(j)
			out = append(out, fmt.Sprintf("enum %s %s %d", e.Name(), v.Name(), v.Number()))
		}
	}
	for i := 0; i < fd.Services().Len(); i++ {
		s := fd.Services().Get(i)
		for j := 0; j < s.Methods().Len(); j++ {
			m := s.Methods().Get(j)
			out = append(out, fmt.Sprintf("rpc %s.%s %s %s", s.Name(), m.Name(), m.Input().Name(), m.Output().Name()))
		}
	}
	return out
}

// minus is a without the elements of b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
