package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
)

// runKeygen writes a fresh key pair: PREFIX.key.pem (PKCS#8, mode 0600)
// and PREFIX.pub.pem (SPKI), and with --jwks the public key as a JWK Set.
// With --key (and no --out) it writes the JWK Set of existing signing keys.
// It never overwrites an existing file.
func runKeygen(_ context.Context, args []string, s sys) int {
	fset := newFlagSet("keygen", "--alg RS256|ES256|EdDSA --out PREFIX [--jwks FILE]\n       agentos-authz keygen --key PRIVATE.pem [--key PREVIOUS.pem] --jwks FILE",
		"Writes a new signing key pair as PEM files: PREFIX.key.pem, the private key (PKCS#8,\n"+
			"mode 0600; keep it secret), and PREFIX.pub.pem, the public key to put in\n"+
			"jwt.verification_keys or JWT_VERIFICATION_KEY. Existing files are not overwritten.\n\n"+
			"--jwks FILE also writes the public key as a JWK Set with its kid (the RFC 7638\n"+
			"thumbprint): the set the service serves at /.well-known/jwks.json when the key is\n"+
			"upstream.signing_key_file, for AgentOS's JWT_JWKS_FILE. Identity tokens are signed\n"+
			"with RS256 (AgentOS's default, recommended), ES256 or EdDSA keys.\n\n"+
			"--key FILE (repeatable, the newest first) writes the JWK Set of existing private\n"+
			"keys instead of generating one: during a key rotation, give AgentOS both keys\n"+
			"before the service signs with the new one.",
		s.stderr)
	alg := fset.String("alg", "RS256", "signature algorithm the key is for: RS*, PS* (RSA 2048), ES256, ES384, ES512 or EdDSA")
	out := fset.String("out", "", "path prefix of the two files (required unless --key)")
	jwksPath := fset.String("jwks", "", "also write the public key as a JWK Set to this file (RS256, ES256 or EdDSA keys)")
	var keyFiles stringList
	fset.Var(&keyFiles, "key", "an existing private key file whose public key --jwks writes; repeat for a rotation, the newest first")
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	if len(keyFiles) > 0 {
		switch {
		case *out != "":
			return usageError(fset, "--key writes the JWK Set of existing keys and --out generates a new pair: give one of them")
		case *jwksPath == "":
			return usageError(fset, "--key needs --jwks FILE, the JWK Set to write")
		case isSet(fset, "alg"):
			return usageError(fset, "--alg is for a new key; the algorithm of a --key file follows from the key")
		}
		return writeJWKSOfFiles(keyFiles, *jwksPath, s)
	}
	if *out == "" {
		return usageError(fset, "--out is required")
	}
	spec, err := authz.LookupSigningAlgorithm(*alg)
	if err != nil {
		return usageError(fset, "--alg: %v", err)
	}
	if spec.Family == authz.KeyHMAC {
		return usageError(fset, "--alg %s uses a shared secret, not a key pair: write a random secret to a file instead", *alg)
	}
	if *jwksPath != "" && !identityTokenAlg(spec.Name) {
		return usageError(fset, "--jwks: identity tokens are signed with RS256, ES256 or EdDSA, not %s: use --alg RS256 (recommended), ES256 or EdDSA", *alg)
	}
	key, err := generateKey(spec)
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
		return exitFault
	}
	privPEM, pubPEM, err := encodeKeyPair(key)
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
		return exitFault
	}
	privPath, pubPath := *out+".key.pem", *out+".pub.pem"
	files := []outFile{
		{path: privPath, data: privPEM, perm: 0o600},
		{path: pubPath, data: pubPEM, perm: 0o644},
	}
	done := fmt.Sprintf("wrote %s (private, keep secret) and %s (public) for %s", privPath, pubPath, spec.Name)
	if *jwksPath != "" {
		uk, err := authz.ParseUpstreamKey(privPEM)
		if err != nil {
			fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
			return exitFault
		}
		jwks, err := authz.UpstreamJWKS(uk)
		if err != nil {
			fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
			return exitFault
		}
		files = append(files, outFile{path: *jwksPath, data: jwks, perm: 0o644})
		done = fmt.Sprintf("wrote %s (private, keep secret), %s (public) and %s (JWK Set, kid %s) for %s", privPath, pubPath, *jwksPath, uk.KeyID(), spec.Name)
	}
	if err := writeAllNew(files); err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
		return exitFault
	}
	fmt.Fprintln(s.stdout, done)
	return exitOK
}

// identityTokenAlg reports whether alg is one identity tokens are signed
// with (docs/CONTRACT.md §9): the key file alone decides it, so RSA keys
// always sign RS256.
func identityTokenAlg(alg jwa.SignatureAlgorithm) bool {
	return alg == jwa.RS256 || alg == jwa.ES256 || alg == jwa.EdDSA
}

// writeJWKSOfFiles writes the JWK Set of the private keys in files (the
// newest first) to path.
func writeJWKSOfFiles(files []string, path string, s sys) int {
	keys := make([]*authz.UpstreamKey, 0, len(files))
	kids := make([]string, 0, len(files))
	for _, f := range files {
		data, err := boundedfile.Read(f, maxFlagFileBytes)
		if err != nil {
			fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
			return exitFault
		}
		k, err := authz.ParseUpstreamKey(data)
		if err != nil {
			fmt.Fprintf(s.stderr, "agentos-authz keygen: %s: %v\n", f, err)
			return exitFault
		}
		keys = append(keys, k)
		kids = append(kids, k.KeyID())
	}
	jwks, err := authz.UpstreamJWKS(keys...)
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
		return exitFault
	}
	if err := writeAllNew([]outFile{{path: path, data: jwks, perm: 0o644}}); err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
		return exitFault
	}
	fmt.Fprintf(s.stdout, "wrote %s (JWK Set, kid %s)\n", path, strings.Join(kids, ", "))
	return exitOK
}

// outFile is a file keygen writes.
type outFile struct {
	path string
	data []byte
	perm fs.FileMode
}

// writeAllNew writes files, none of which may exist: it checks them all
// before writing any, and removes those it wrote when one fails, so that
// no half pair is left behind.
func writeAllNew(files []outFile) error {
	for _, f := range files {
		if _, err := os.Lstat(f.path); err == nil {
			return fmt.Errorf("%s already exists; not overwriting it", f.path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for i, f := range files {
		if err := writeNew(f.path, f.data, f.perm); err != nil {
			for _, w := range files[:i] {
				_ = os.Remove(w.path)
			}
			return err
		}
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

var _ flag.Value = (*stringList)(nil)

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// writeNew creates path with perm, failing if it exists.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
