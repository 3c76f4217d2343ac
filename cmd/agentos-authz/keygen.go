package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/agentos-authz/agentos-authz/authz"
)

// runKeygen writes a fresh key pair: PREFIX.key.pem (PKCS#8, mode 0600)
// and PREFIX.pub.pem (SPKI). It never overwrites an existing file.
func runKeygen(_ context.Context, args []string, s sys) int {
	fset := newFlagSet("keygen", "--alg RS256|ES256|EdDSA --out PREFIX",
		"Writes a new signing key pair as PEM files: PREFIX.key.pem, the private key (PKCS#8,\n"+
			"mode 0600; keep it secret), and PREFIX.pub.pem, the public key to put in\n"+
			"jwt.verification_keys or JWT_VERIFICATION_KEY. Existing files are not overwritten.",
		s.stderr)
	alg := fset.String("alg", "RS256", "signature algorithm the key is for: RS*, PS* (RSA 2048), ES256, ES384, ES512 or EdDSA")
	out := fset.String("out", "", "path prefix of the two files (required)")
	if code, ok := parseFlags(fset, args); !ok {
		return code
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
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			fmt.Fprintf(s.stderr, "agentos-authz keygen: %s already exists; not overwriting it\n", p)
			return exitFault
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
			return exitFault
		}
	}
	if err := writeNew(privPath, privPEM, 0o600); err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
		return exitFault
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		_ = os.Remove(privPath) // no half pair left behind
		fmt.Fprintf(s.stderr, "agentos-authz keygen: %v\n", err)
		return exitFault
	}
	fmt.Fprintf(s.stdout, "wrote %s (private, keep secret) and %s (public) for %s\n", privPath, pubPath, spec.Name)
	return exitOK
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
