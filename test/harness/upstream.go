package harness

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Header is one header line of the request Envoy forwards upstream.
// FromClient marks a value that holds (all or part of) what the client
// sent, so a test can prove no client-sent identity header survives.
type Header struct {
	Key        string
	Value      string
	FromClient bool
}

// Headers is a request's header lines in order; keys are lower-case.
type Headers []Header

// Values returns every value of key, in order.
func (h Headers) Values(key string) []string {
	key = strings.ToLower(key)
	var out []string
	for _, l := range h {
		if l.Key == key {
			out = append(out, l.Value)
		}
	}
	return out
}

// ApplyOK applies an allowed CheckResponse's ok_response to the upstream
// request as Envoy's ext_authz filter does (ENVOY-NOTES §3): every header
// option first, then headers_to_remove (pseudo-headers and host cannot be
// removed). It returns a new slice; h is not modified.
//
// Header options follow the deprecated append flag when it is set (false:
// overwrite or add; true: append to an existing value with ",", nothing
// when absent), and otherwise append_action, where the default
// APPEND_IF_EXISTS_OR_ADD adds another line — so a service that does not
// ask for OVERWRITE_IF_EXISTS_OR_ADD leaves the client's value beside its
// own, which the always-checks catch.
func ApplyOK(h Headers, ok *authv3.OkHttpResponse) (Headers, error) {
	out := append(Headers(nil), h...)
	if ok == nil {
		return out, nil
	}
	var err error
	for _, opt := range ok.GetHeaders() {
		out, err = applyOption(out, opt)
		if err != nil {
			return nil, err
		}
	}
	for _, key := range ok.GetHeadersToRemove() {
		key = strings.ToLower(key)
		if strings.HasPrefix(key, ":") || key == "host" {
			continue
		}
		out = removeKey(out, key)
	}
	return out, nil
}

func applyOption(h Headers, opt *corev3.HeaderValueOption) (Headers, error) {
	hv := opt.GetHeader()
	if hv == nil {
		return nil, fmt.Errorf("header option without a header: %v", opt)
	}
	key := strings.ToLower(hv.GetKey())
	if key == "" {
		return nil, fmt.Errorf("header option with an empty key: %v", opt)
	}
	value := hv.GetValue()
	if raw := hv.GetRawValue(); len(raw) > 0 {
		value = string(raw)
	}
	set := Header{Key: key, Value: value}
	present := len(h.Values(key)) > 0

	if opt.GetAppend() != nil {
		if !opt.GetAppend().GetValue() {
			return overwrite(h, set), nil
		}
		if !present {
			return h, nil
		}
		for i := range h {
			if h[i].Key == key {
				h[i].Value += "," + value // still carries the client's value
				break
			}
		}
		return h, nil
	}
	switch opt.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		return append(h, set), nil
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if present {
			return h, nil
		}
		return append(h, set), nil
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		return overwrite(h, set), nil
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if !present {
			return h, nil
		}
		return overwrite(h, set), nil
	}
	return nil, fmt.Errorf("header %s: unknown append_action %v", key, opt.GetAppendAction())
}

// overwrite replaces every line of the key by one, at the first line's place.
func overwrite(h Headers, set Header) Headers {
	out := h[:0:0]
	done := false
	for _, l := range h {
		if l.Key != set.Key {
			out = append(out, l)
			continue
		}
		if !done {
			out = append(out, set)
			done = true
		}
	}
	if !done {
		out = append(out, set)
	}
	return out
}

func removeKey(h Headers, key string) Headers {
	out := h[:0:0]
	for _, l := range h {
		if l.Key != key {
			out = append(out, l)
		}
	}
	return out
}

// HeaderValues lists the values of key among Envoy header options, as
// denied_response.headers or response_headers_to_add reach the client.
func HeaderValues(opts []*corev3.HeaderValueOption, key string) []string {
	key = strings.ToLower(key)
	var out []string
	for _, o := range opts {
		hv := o.GetHeader()
		if strings.ToLower(hv.GetKey()) != key {
			continue
		}
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		out = append(out, v)
	}
	return out
}
