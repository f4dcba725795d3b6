// Command edgeline provisions the hybrid cluster and deploys the face-login app, for CI
// pipelines and workstations alike: it runs the Pulumi program of infra/ through the
// Automation API, never asks a question, prints one line per resource change, and exits
// with a code a pipeline can act on.
//
// Usage:
//
//	edgeline [flags] up|preview|destroy|outputs
//	edgeline images build|push [flags]
//
// `edgeline images` builds the face-login app's images (amd64 and arm64, without a
// container engine) and pushes them to a registry; see docs/images.md.
//
// Exit codes: 0 done; 1 the operation failed; 2 bad usage or a bad stack config (nothing
// was changed); 3 preview --detailed-exitcode found changes.
//
// The stack's config lives in infra/Pulumi.<stack>.yaml, as for `pulumi up`. State goes
// to --backend (or $PULUMI_BACKEND_URL), secrets are encrypted with the passphrase in
// $PULUMI_CONFIG_PASSPHRASE or $PULUMI_CONFIG_PASSPHRASE_FILE unless --secrets-provider
// names another provider.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/edgeline/edgeline/infra/action"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitChanges = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a problem with the command line: nothing was changed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "images" {
		return runImages(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("edgeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		s                                      action.Stack
		refresh, expectNoChanges, detailedExit bool
		showSecrets, asJSON                    bool
	)
	fs.StringVar(&s.Dir, "dir", envOr("EDGELINE_DIR", "infra"), "directory of Pulumi.yaml and Pulumi.<stack>.yaml ($EDGELINE_DIR)")
	fs.StringVar(&s.Name, "stack", envOr("EDGELINE_STACK", "dev"), "stack name ($EDGELINE_STACK)")
	fs.StringVar(&s.Backend, "backend", os.Getenv("PULUMI_BACKEND_URL"), "state backend URL, e.g. file:///var/lib/edgeline or s3://bucket ($PULUMI_BACKEND_URL)")
	fs.StringVar(&s.SecretsProvider, "secrets-provider", "passphrase", "secrets provider for a new stack (passphrase, awskms://..., ...)")
	fs.StringVar(&s.Pulumi, "pulumi", os.Getenv("EDGELINE_PULUMI"), "pulumi CLI to use; default: pulumi on PATH ($EDGELINE_PULUMI)")
	fs.BoolVar(&refresh, "refresh", false, "refresh the state from the real resources first (up, preview, destroy)")
	fs.BoolVar(&expectNoChanges, "expect-no-changes", false, "fail if up or preview would change anything")
	fs.BoolVar(&detailedExit, "detailed-exitcode", false, "preview: exit 3 when there are changes")
	fs.BoolVar(&showSecrets, "show-secrets", false, "outputs: print secret values")
	fs.BoolVar(&asJSON, "json", false, "outputs: print JSON")
	fs.BoolVar(&s.Verbose, "verbose", false, "also print the pulumi CLI's own output to stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: edgeline [flags] up|preview|destroy|outputs\n       edgeline images build|push [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	// Flags may come before and after the command: edgeline --stack prod up --refresh.
	parse := func(args []string) bool { return fs.Parse(args) == nil }
	if !parse(args) {
		return exitCode(fs, args)
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return exitUsage
	}
	op := fs.Arg(0)
	if !parse(fs.Args()[1:]) {
		return exitCode(fs, args)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "edgeline: one command at a time (got %s and %s)\n", op, strings.Join(fs.Args(), " "))
		return exitUsage
	}
	s.Stdout, s.Stderr = stdout, stderr
	code := exitOK
	var err error
	switch op {
	case "up":
		err = action.Up{Stack: s, Refresh: refresh, ExpectNoChanges: expectNoChanges}.Run(ctx)
	case "preview":
		var n int
		n, err = action.Preview{Stack: s, Refresh: refresh, ExpectNoChanges: expectNoChanges}.Run(ctx)
		if detailedExit && n > 0 {
			code = exitChanges
		}
	case "destroy":
		err = action.Destroy{Stack: s, Refresh: refresh}.Run(ctx)
	case "outputs":
		err = action.Outputs{Stack: s, ShowSecrets: showSecrets, JSON: asJSON}.Run(ctx)
	default:
		err = action.ConfigError{Err: fmt.Errorf("unknown command %q: want up, preview, destroy or outputs", op)}
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgeline %s: %v\n", op, err)
		if errors.As(err, new(action.ConfigError)) {
			return exitUsage
		}
		return exitFailed
	}
	return code
}

// exitCode is the exit code after a flag parse error: -h asks for help and is no error.
func exitCode(fs *flag.FlagSet, args []string) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			return exitOK
		}
	}
	return exitUsage
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
