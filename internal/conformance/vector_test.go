package conformance

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string // "" = parses
	}{
		{name: "object", doc: `{"description": "d", "config": {"a": 1}, "env": {"X": "1"}, "vectors": [{"name": "f/v", "request": {"path": "/"}, "expect": {"status": 200}}]}`},
		{name: "bare array", doc: `[{"name": "f/v", "request": {"path": "/"}, "expect": {"status": [401, 403]}}]`},
		{name: "startup", doc: `[{"name": "f/s", "config": {}, "env": {}, "expect": {"exit_code": 2, "stderr_contains": ["x"]}}]`},
		{name: "unknown top field", doc: `{"vectors": [], "extra": 1}`, wantErr: "extra"},
		{name: "unknown expect field", doc: `[{"name": "v", "expect": {"status": 200, "body": "x"}}]`, wantErr: "body"},
		{name: "unknown token field", doc: `[{"name": "v", "token": {"kid": "x"}, "expect": {"status": 200}}]`, wantErr: "kid"},
		{name: "no status", doc: `[{"name": "v", "expect": {}}]`, wantErr: "neither"},
		{name: "status and exit_code", doc: `[{"name": "v", "expect": {"status": 200, "exit_code": 2}}]`, wantErr: "both"},
		{name: "detail and prefix", doc: `[{"name": "v", "expect": {"status": 401, "detail": "a", "detail_prefix": "b"}}]`, wantErr: "both"},
		{name: "no name", doc: `[{"expect": {"status": 200}}]`, wantErr: "no name"},
		{name: "bad omit", doc: `[{"name": "v", "request": {"omit": "x"}, "expect": {"status": 200}}]`, wantErr: "omit"},
		{name: "bad header line", doc: `[{"name": "v", "request": {"header_lines": [["a"]]}, "expect": {"status": 200}}]`, wantErr: "header line"},
		{name: "bad header expectation", doc: `[{"name": "v", "expect": {"status": 200, "headers": {"a": {"list": []}}}}]`, wantErr: "header expectation"},
		{name: "non-string header", doc: `[{"name": "v", "request": {"headers": {"a": 1}}, "expect": {"status": 200}}]`, wantErr: "headers"},
	}
	for _, tt := range tests {
		_, err := ParseFile(tt.name+".json", []byte(tt.doc))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error = %v, want one naming %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestVectorFields(t *testing.T) {
	f, err := ParseFile("x.json", []byte(`[{"name": "x/v",
	  "request": {"method": "POST", "path": "/p", "headers": {"z": "1", "a": "2", "m": "3"}, "header_lines": [["k", "v"]], "raw_headers": true},
	  "expect": {"status": 200, "headers": {"s": "one", "set": {"set": ["a", "b"]}, "j": {"json": {"k": [1]}}}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	v := f.Vectors[0]
	if want := (HeaderList{{"z", "1"}, {"a", "2"}, {"m", "3"}}); !reflect.DeepEqual(v.Request.Headers, want) {
		t.Errorf("headers = %v, want document order %v", v.Request.Headers, want)
	}
	if !reflect.DeepEqual(v.Request.HeaderLines, []HeaderLine{{"k", "v"}}) || !v.Request.RawHeaders {
		t.Errorf("request = %+v", v.Request)
	}
	h := v.Expect.Headers
	if *h["s"].Exact != "one" || !reflect.DeepEqual(h["set"].Set, []string{"a", "b"}) || compactJSON(h["j"].JSON) != `{"k":[1]}` {
		t.Errorf("header expectations = %+v", h)
	}
	if !v.Expect.Status.Has(200) || v.Expect.Status.Has(401) {
		t.Errorf("status = %v", v.Expect.Status)
	}
}

func TestGroups(t *testing.T) {
	f, err := ParseFile("g.json", []byte(`{"config": {"a": 1}, "env": {"E": "1"}, "vectors": [
	  {"name": "v1", "expect": {"status": 200}},
	  {"name": "s1", "config": {"b": 2}, "expect": {"exit_code": 2}},
	  {"name": "v2", "expect": {"status": 200}},
	  {"name": "v3", "config": {"a":1}, "env": {"E": "1"}, "expect": {"status": 200}},
	  {"name": "v4", "config": null, "expect": {"status": 200}},
	  {"name": "v5", "env": {"E": "2"}, "expect": {"status": 200}},
	  {"name": "s2", "config": {"b": 2}, "expect": {"exit_code": 2}}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := f.Groups()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range groups {
		var names []string
		for _, v := range g.Vectors {
			names = append(names, v.Name)
		}
		cfg := "none"
		if g.Config != nil {
			cfg = compactJSON(g.Config)
		}
		got = append(got, strings.Join(names, ",")+" "+cfg+" "+g.Env["E"]+map[bool]string{true: " startup"}[g.Startup])
	}
	want := []string{
		`v1,v2,v3 {"a":1} 1`,
		`s1 {"b":2} 1 startup`,
		`v4 none 1`,
		`v5 {"a":1} 2`,
		`s2 {"b":2} 1 startup`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func compactJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}
