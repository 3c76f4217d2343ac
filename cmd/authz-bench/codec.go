package main

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// checkMethod is the ext_authz Check RPC (docs/CONTRACT.md §1).
const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// wireCodec lets the load generator send requests it encoded ahead of time
// and read only what it counts from the reply, so that the client spends
// as little CPU per call as gRPC allows. It is named "proto": the bytes on
// the wire are exactly protobuf's, and the server decodes them with its
// usual codec. Anything else is delegated to the registered proto codec.
type wireCodec struct {
	proto encoding.CodecV2
}

func newWireCodec() (wireCodec, error) {
	c := encoding.GetCodecV2("proto")
	if c == nil {
		return wireCodec{}, errors.New("grpc has no proto codec registered")
	}
	return wireCodec{proto: c}, nil
}

func (wireCodec) Name() string { return "proto" }

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*wireRequest); ok {
		// SliceBuffer is never recycled by gRPC, so the same bytes can be
		// sent by many calls at once.
		return mem.BufferSlice{mem.SliceBuffer(r.body)}, nil
	}
	return c.proto.Marshal(v)
}

func (c wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	out, ok := v.(*checkOutcome)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return out.parse(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return out.parse(buf.ReadOnlyData())
}

// checkOutcome is what the load generator reads from a CheckResponse: the
// gRPC-style status code (0 = allowed) and, on a denial, the HTTP status of
// the denied (or error) response.
type checkOutcome struct {
	code       int32
	httpStatus int32
}

// CheckResponse field numbers (envoy/service/auth/v3/external_auth.proto),
// google.rpc.Status.code and envoy.type.v3.HttpStatus.code.
const (
	fieldCheckStatus  = 1 // google.rpc.Status status
	fieldCheckDenied  = 2 // DeniedHttpResponse denied_response
	fieldCheckError   = 5 // DeniedHttpResponse error_response
	fieldStatusCode   = 1 // google.rpc.Status.code, HttpStatus.code
	fieldDeniedStatus = 1 // DeniedHttpResponse.status (HttpStatus)
)

// parse reads a CheckResponse in protobuf wire form, skipping every field
// it does not count.
func (o *checkOutcome) parse(b []byte) error {
	*o = checkOutcome{}
	return walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == fieldCheckStatus && typ == protowire.BytesType:
			code, err := varintField(v, fieldStatusCode)
			if err != nil {
				return fmt.Errorf("CheckResponse.status: %w", err)
			}
			o.code = int32(code)
		case (num == fieldCheckDenied || num == fieldCheckError) && typ == protowire.BytesType:
			return walkFields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != fieldDeniedStatus || typ != protowire.BytesType {
					return nil
				}
				code, err := varintField(v, fieldStatusCode)
				if err != nil {
					return fmt.Errorf("CheckResponse.denied_response.status: %w", err)
				}
				o.httpStatus = int32(code)
				return nil
			})
		}
		return nil
	})
}

// varintField returns the last value of varint field num in message b
// (protobuf's last-one-wins rule), 0 when absent.
func varintField(b []byte, num protowire.Number) (uint64, error) {
	var last uint64
	err := walkFields(b, func(n protowire.Number, typ protowire.Type, _ []byte, v uint64) error {
		if n == num && typ == protowire.VarintType {
			last = v
		}
		return nil
	})
	return last, err
}

// walkFields calls fn for each field of message b: for a length-delimited
// field with its bytes, for a varint with its value.
func walkFields(b []byte, fn func(num protowire.Number, typ protowire.Type, bytes []byte, varint uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var (
			payload []byte
			varint  uint64
		)
		switch typ {
		case protowire.VarintType:
			varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			payload, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, payload, varint); err != nil {
			return err
		}
	}
	return nil
}
