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

// usageError is a problem with the command line or the config: nothing was changed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "images" {
		return runImages(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("edgeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.dir, "dir", envOr("EDGELINE_DIR", "infra"), "directory of Pulumi.yaml and Pulumi.<stack>.yaml ($EDGELINE_DIR)")
	fs.StringVar(&o.stack, "stack", envOr("EDGELINE_STACK", "dev"), "stack name ($EDGELINE_STACK)")
	fs.StringVar(&o.backend, "backend", os.Getenv("PULUMI_BACKEND_URL"), "state backend URL, e.g. file:///var/lib/edgeline or s3://bucket ($PULUMI_BACKEND_URL)")
	fs.StringVar(&o.secretsProvider, "secrets-provider", "passphrase", "secrets provider for a new stack (passphrase, awskms://..., ...)")
	fs.StringVar(&o.pulumi, "pulumi", os.Getenv("EDGELINE_PULUMI"), "pulumi CLI to use; default: pulumi on PATH ($EDGELINE_PULUMI)")
	fs.BoolVar(&o.refresh, "refresh", false, "refresh the state from the real resources first (up, preview, destroy)")
	fs.BoolVar(&o.expectNoChanges, "expect-no-changes", false, "fail if up or preview would change anything")
	fs.BoolVar(&o.detailedExitCode, "detailed-exitcode", false, "preview: exit 3 when there are changes")
	fs.BoolVar(&o.showSecrets, "show-secrets", false, "outputs: print secret values")
	fs.BoolVar(&o.json, "json", false, "outputs: print JSON")
	fs.BoolVar(&o.verbose, "verbose", false, "also print the pulumi CLI's own output to stderr")
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
	o.stdout, o.stderr = stdout, stderr
	code, err := o.do(ctx, op)
	if err != nil {
		fmt.Fprintf(stderr, "edgeline %s: %v\n", op, err)
		var ue usageError
		if errors.As(err, &ue) {
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
