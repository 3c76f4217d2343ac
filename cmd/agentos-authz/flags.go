package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// envConfig names the configuration file when --config is not given
// (docs/CONTRACT.md §3).
const envConfig = "AUTHZ_CONFIG"

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints "Usage: agentos-authz <synopsis>", the description and the flags.
func newFlagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: agentos-authz %s %s\n\n%s\n\nFlags:\n", name, synopsis, description)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; ok is false when the command must stop, with the
// exit code to return: 0 after -h, 2 after a bad flag or a stray argument.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false // flag already printed the error and usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "agentos-authz %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// usageError prints a command's usage error and returns exit status 2.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "agentos-authz %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return exitUsage
}

// configPath is --config, else AUTHZ_CONFIG, else "" (no file: defaults
// and the environment only).
func configPath(flagValue string, lookupEnv func(string) (string, bool)) string {
	if flagValue != "" {
		return flagValue
	}
	if v, ok := lookupEnv(envConfig); ok {
		return v
	}
	return ""
}

// loadConfig reads the file at path (none when "") and loads it with the
// environment and the flags (docs/CONTRACT.md §2 precedence).
func loadConfig(path string, lookupEnv func(string) (string, bool), flags serveconfig.Flags) (*config, error) {
	text, err := readConfigFile(path)
	if err != nil {
		// The whole document's problem, named like Load names one.
		return nil, &authz.FieldError{Field: "config", Err: err}
	}
	return loadText(text, lookupEnv, flags)
}

// maxConfigBytes bounds the configuration file: real ones are a few KiB,
// scope_mappings of thousands of routes a few hundred.
const maxConfigBytes = 4 << 20

// maxFlagFileBytes bounds a key or CA file named by a flag (token --key,
// keygen's inputs, check --tls-ca): a PEM CA bundle is a few hundred KiB.
const maxFlagFileBytes = 4 << 20

// readConfigFile reads the configuration file at path (nothing when ""):
// only a regular file of at most maxConfigBytes, so --config /dev/zero or
// a FIFO is an error, not a hang (README.md, security table).
func readConfigFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return boundedfile.Read(path, maxConfigBytes)
}

// printConfigError writes every problem of a configuration error on its own
// line, each naming its field (the errors come from authz, which never puts
// a key or secret in them).
func printConfigError(w io.Writer, err error) {
	problems := flatten(err)
	fmt.Fprintf(w, "agentos-authz: invalid configuration (%d problem%s):\n", len(problems), plural(len(problems)))
	for _, p := range problems {
		for i, line := range strings.Split(p.Error(), "\n") {
			if i == 0 {
				fmt.Fprintf(w, "  - %s\n", line)
			} else {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
}

// flatten unwraps errors.Join trees into their leaves, in order.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
