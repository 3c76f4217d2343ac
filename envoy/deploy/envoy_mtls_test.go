package deploy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

const (
	mtlsBootstrap     = "envoy/grpc-mtls.yaml"
	upstreamTLSType   = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
	authzClusterName  = "agentos_authz"
	authzServiceName  = "agentos-authz.agentos.svc.cluster.local"
	minTLSVersionText = "TLSv1_2"
)

// checkMutualTLS checks what the README's "TLS" section promises of the mTLS bootstrap:
// the authz cluster speaks TLS 1.2 or later with ALPN h2, presents a client certificate,
// and verifies the service's certificate against a CA and the service's name.
func checkMutualTLS(b *bootstrapv3.Bootstrap) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var found bool
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != authzClusterName {
			continue
		}
		found = true
		ts := c.GetTransportSocket()
		if typeName(ts.GetTypedConfig()) != upstreamTLSType {
			fail("cluster %s: transport_socket is %q, want %s", c.GetName(), typeName(ts.GetTypedConfig()), upstreamTLSType)
			continue
		}
		var up tlsv3.UpstreamTlsContext
		if err := ts.GetTypedConfig().UnmarshalTo(&up); err != nil {
			fail("cluster %s: %v", c.GetName(), err)
			continue
		}
		ctx := up.GetCommonTlsContext()
		if v := ctx.GetTlsParams().GetTlsMinimumProtocolVersion(); v < tlsv3.TlsParameters_TLSv1_2 {
			fail("tls_params.tls_minimum_protocol_version is %s, want %s or later (agentos-authz refuses older)", v, minTLSVersionText)
		}
		if alpn := ctx.GetAlpnProtocols(); len(alpn) != 1 || alpn[0] != "h2" {
			fail("alpn_protocols = %q, want [h2] (gRPC)", alpn)
		}
		certs := ctx.GetTlsCertificates()
		if len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() == "" || certs[0].GetPrivateKey().GetFilename() == "" {
			fail("tls_certificates: want one client certificate and key from files (tls.client_ca_file requires it)")
		}
		vc := ctx.GetValidationContext()
		if vc.GetTrustedCa().GetFilename() == "" {
			fail("validation_context.trusted_ca: unset, the service's certificate would not be verified")
		}
		names := vc.GetMatchTypedSubjectAltNames()
		if len(names) == 0 {
			fail("validation_context.match_typed_subject_alt_names: unset, any certificate of the CA would pass for agentos-authz")
		}
		for _, n := range names {
			if n.GetSanType() != tlsv3.SubjectAltNameMatcher_DNS || !stringMatch(n.GetMatcher(), up.GetSni()) {
				fail("match_typed_subject_alt_names: %v does not match the sni %q", n, up.GetSni())
			}
		}
		for _, ep := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range ep.GetLbEndpoints() {
				if addr := lb.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); addr != up.GetSni() {
					fail("endpoint %q is not the sni %q: the certificate name checked is not the one dialled", addr, up.GetSni())
				}
			}
		}
	}
	if !found {
		fail("no cluster %s", authzClusterName)
	}
	return errors.Join(errs...)
}

func TestEnvoyMutualTLSBootstrap(t *testing.T) {
	data := readDeployFile(t, mtlsBootstrap)
	if err := loadBootstrap(t, data, modeGRPC); err != nil {
		t.Fatalf("%s:\n%v", mtlsBootstrap, err)
	}
	b, err := decodeBootstrap(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMutualTLS(b); err != nil {
		t.Errorf("%s:\n%v", mtlsBootstrap, err)
	}
	if !strings.Contains(string(data), authzServiceName) {
		t.Errorf("%s does not name %s", mtlsBootstrap, authzServiceName)
	}
}

// TestEnvoyMutualTLSRejects feeds the checks broken variants of the mTLS bootstrap.
func TestEnvoyMutualTLSRejects(t *testing.T) {
	base := string(readDeployFile(t, mtlsBootstrap))
	tests := []struct {
		name    string
		old     string
		new     string
		wantErr string
	}{
		{name: "TLS 1.1 allowed", old: "tls_minimum_protocol_version: TLSv1_2", new: "tls_minimum_protocol_version: TLSv1_1", wantErr: "tls_minimum_protocol_version is TLSv1_1"},
		{name: "no client certificate", old: "          tls_certificates:\n          - certificate_chain: { filename: /etc/envoy/tls/tls.crt }\n            private_key: { filename: /etc/envoy/tls/tls.key }\n", new: "", wantErr: "tls_certificates"},
		{name: "server not verified", old: "            trusted_ca: { filename: /etc/envoy/tls/ca.crt }\n", new: "", wantErr: "trusted_ca: unset"},
		{name: "any name of the CA", old: "            match_typed_subject_alt_names:\n            - san_type: DNS\n              matcher: { exact: agentos-authz.agentos.svc.cluster.local }\n", new: "", wantErr: "match_typed_subject_alt_names: unset"},
		{name: "name other than the sni", old: "matcher: { exact: agentos-authz.agentos.svc.cluster.local }", new: "matcher: { exact: other.example }", wantErr: "does not match the sni"},
		{name: "no ALPN", old: "          alpn_protocols: [\"h2\"]\n", new: "", wantErr: "alpn_protocols"},
		{name: "plaintext", old: "    transport_socket:\n      name: envoy.transport_sockets.tls\n", new: "    transport_socketx:\n      name: envoy.transport_sockets.tls\n", wantErr: "transport_socketx"},
		{name: "invalid value in the TLS context", old: "sni: agentos-authz.agentos.svc.cluster.local", new: "sni: " + strings.Repeat("a", 300), wantErr: "Sni"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(mustReplace(t, base, tc.old, tc.new))
			err := loadBootstrap(t, data, modeGRPC)
			if err == nil {
				var b *bootstrapv3.Bootstrap
				if b, err = decodeBootstrap(data); err == nil {
					err = checkMutualTLS(b)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error = %v, want %q", tc.name, err, tc.wantErr)
			}
		})
	}
}
