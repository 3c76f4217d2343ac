package main

import (
	"bytes"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestCheckOutcomeParse(t *testing.T) {
	denied := func(code int32, http typev3.StatusCode) *authv3.CheckResponse {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: code, Message: "denied"},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: http},
				Headers: []*corev3.HeaderValueOption{{
					Header: &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
				}},
				Body: `{"detail": "Insufficient permissions. Required scope(s): agents:read"}`,
			}},
		}
	}
	meta, err := structpb.NewStruct(map[string]any{"user_id": "u1", "n": 3.0})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		resp *authv3.CheckResponse
		want checkOutcome
	}{
		{name: "empty response", resp: &authv3.CheckResponse{}, want: checkOutcome{}},
		{
			name: "allowed with headers and metadata",
			resp: &authv3.CheckResponse{
				Status: &rpcstatus.Status{},
				HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
					Headers:         []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-agentos-user-id", Value: "u1"}}},
					HeadersToRemove: []string{"x-agentos-scopes"},
				}},
				DynamicMetadata: meta,
			},
			want: checkOutcome{},
		},
		{name: "denied 403", resp: denied(7, typev3.StatusCode_Forbidden), want: checkOutcome{code: 7, httpStatus: 403}},
		{name: "denied 401", resp: denied(16, typev3.StatusCode_Unauthorized), want: checkOutcome{code: 16, httpStatus: 401}},
		{name: "denied 400", resp: denied(3, typev3.StatusCode_BadRequest), want: checkOutcome{code: 3, httpStatus: 400}},
		{name: "denied without an HTTP response", resp: &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}}, want: checkOutcome{code: 7}},
		{
			name: "error response",
			resp: &authv3.CheckResponse{
				Status:       &rpcstatus.Status{Code: 13},
				HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}}},
			},
			want: checkOutcome{code: 13, httpStatus: 503},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			got := checkOutcome{code: -1, httpStatus: -1} // parse must reset it
			if err := got.parse(b); err != nil {
				t.Fatalf("parse(%v) error: %v", tc.resp, err)
			}
			if got != tc.want {
				t.Errorf("parse(%v) = %+v, want %+v", tc.resp, got, tc.want)
			}
		})
	}
}

func TestCheckOutcomeParseMalformed(t *testing.T) {
	for _, b := range [][]byte{
		{0x0a},                   // status: length missing
		{0x0a, 0x05, 0x08},       // status: truncated
		{0x12, 0x02, 0x0a, 0x09}, // denied.status: length past the end
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // bad tag varint
	} {
		var o checkOutcome
		if err := o.parse(b); err == nil {
			t.Errorf("parse(% x) = %+v, want an error", b, o)
		}
	}
}

func TestWireCodec(t *testing.T) {
	c, err := newWireCodec()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte{0x0a, 0x02, 0x08, 0x07}
	out, err := c.Marshal(&wireRequest{body: body})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Materialize(); !bytes.Equal(got, body) {
		t.Errorf("Marshal(wireRequest) = % x, want the bytes as given % x", got, body)
	}
	// Any other message goes through protobuf.
	msg := &rpcstatus.Status{Code: 7, Message: "x"}
	out, err = c.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	back := new(rpcstatus.Status)
	if err := c.Unmarshal(out, back); err != nil || !proto.Equal(back, msg) {
		t.Errorf("proto round trip = %v, %v; want %v", back, err, msg)
	}
	// A reply split over several buffers is read whole.
	resp, err := proto.Marshal(&authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: 7},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 403}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	split := mem.BufferSlice{mem.SliceBuffer(resp[:3]), mem.SliceBuffer(resp[3:])}
	var oc checkOutcome
	if err := c.Unmarshal(split, &oc); err != nil || oc != (checkOutcome{code: 7, httpStatus: 403}) {
		t.Errorf("Unmarshal(split) = %+v, %v; want {7 403}", oc, err)
	}
}
