package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/edgeline/edgeline/infra/stack"
	"github.com/edgeline/edgeline/infra/stackconfig"
)

// options are the command line, validated once.
type options struct {
	dir, stack, backend, secretsProvider, pulumi string
	refresh, expectNoChanges, detailedExitCode   bool
	showSecrets, json, verbose                   bool
	stdout, stderr                               io.Writer
}

func (o *options) do(ctx context.Context, op string) (int, error) {
	switch op {
	case "up", "preview", "destroy", "outputs":
	default:
		return 0, usageError{fmt.Errorf("unknown command %q: want up, preview, destroy or outputs", op)}
	}
	st, err := o.open(ctx)
	if err != nil {
		return 0, err
	}
	switch op {
	case "up":
		return o.up(ctx, st)
	case "preview":
		return o.preview(ctx, st)
	case "destroy":
		return o.destroy(ctx, st)
	}
	return o.outputs(ctx, st)
}

// open selects (or creates) the stack with the program inline, in a workspace rooted
// at the program's directory so Pulumi.yaml and Pulumi.<stack>.yaml apply.
func (o *options) open(ctx context.Context) (auto.Stack, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return auto.Stack{}, usageError{err}
	}
	if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err != nil {
		return auto.Stack{}, usageError{fmt.Errorf("no Pulumi.yaml in %s: point --dir at the infra directory", dir)}
	}
	if o.secretsProvider == "passphrase" && os.Getenv("PULUMI_CONFIG_PASSPHRASE") == "" && os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") == "" {
		return auto.Stack{}, usageError{fmt.Errorf("set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE: the stack's secrets are encrypted with it")}
	}
	if o.pulumi != "" {
		// The CLI, and the plugins it looks up next to it, come first on PATH.
		os.Setenv("PATH", filepath.Dir(o.pulumi)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{SkipVersionCheck: true})
	if err != nil {
		return auto.Stack{}, usageError{fmt.Errorf("the pulumi CLI is needed on PATH (or --pulumi): %w", err)}
	}
	env := map[string]string{"PULUMI_SKIP_UPDATE_CHECK": "1"}
	if o.backend != "" {
		env["PULUMI_BACKEND_URL"] = o.backend
		if path, ok := strings.CutPrefix(o.backend, "file://"); ok && !strings.HasPrefix(path, "~") {
			// A first run in a fresh CI workspace: the state directory does not exist yet.
			if err := os.MkdirAll(path, 0o700); err != nil {
				return auto.Stack{}, fmt.Errorf("state directory: %w", err)
			}
		}
	}
	st, err := auto.UpsertStackInlineSource(ctx, o.stack, "edgeline", stack.Program(dir),
		auto.WorkDir(dir), auto.Pulumi(cmd), auto.EnvVars(env), auto.SecretsProvider(o.secretsProvider))
	if err != nil {
		return auto.Stack{}, fmt.Errorf("open stack %s: %w", o.stack, err)
	}
	return st, nil
}

// validate parses the stack config as the program will, so a bad config is reported
// before the engine starts, and shows its warnings.
func (o *options) validate(ctx context.Context, st auto.Stack) error {
	all, err := st.GetAllConfig(ctx)
	if err != nil {
		return fmt.Errorf("read the config of stack %s: %w", o.stack, err)
	}
	cfg, err := stackconfig.Parse(stackconfig.Source{
		Get: func(key string) (string, bool) {
			v, ok := all[stackconfig.Namespace+":"+key]
			return v.Value, ok
		},
		Secret: func(key string) bool { return all[stackconfig.Namespace+":"+key].Secret },
		Keys:   slices.Sorted(maps.Keys(all)),
	})
	if err != nil {
		return usageError{fmt.Errorf("%w\n(edit %s)", err, filepath.Join(o.dir, "Pulumi."+o.stack+".yaml"))}
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(o.stderr, "edgeline: warning: %s\n", w)
	}
	return nil
}

// watch prints the progress view of an operation's engine events until the channel
// closes; the returned wait blocks until it has.
func (o *options) watch(verb string) (chan<- events.EngineEvent, func() *progress) {
	ch := make(chan events.EngineEvent)
	p := newProgress(o.stdout, verb)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range ch {
			p.event(e)
		}
	}()
	return ch, func() *progress { wg.Wait(); return p }
}

func (o *options) cliOutput() io.Writer {
	if o.verbose {
		return o.stderr
	}
	return io.Discard
}

func (o *options) up(ctx context.Context, st auto.Stack) (int, error) {
	if err := o.validate(ctx, st); err != nil {
		return 0, err
	}
	fmt.Fprintf(o.stdout, "edgeline up: stack %s\n", o.stack)
	ch, wait := o.watch("up")
	opts := []optup.Option{optup.EventStreams(ch), optup.ProgressStreams(o.cliOutput()), optup.ErrorProgressStreams(o.cliOutput())}
	if o.refresh {
		opts = append(opts, optup.Refresh())
	}
	if o.expectNoChanges {
		opts = append(opts, optup.ExpectNoChanges())
	}
	res, err := st.Up(ctx, opts...)
	p := wait()
	p.summary()
	if err != nil {
		return 0, opError(err, p)
	}
	printOutputs(o.stdout, res.Outputs, false)
	return exitOK, nil
}

func (o *options) preview(ctx context.Context, st auto.Stack) (int, error) {
	if err := o.validate(ctx, st); err != nil {
		return 0, err
	}
	fmt.Fprintf(o.stdout, "edgeline preview: stack %s\n", o.stack)
	ch, wait := o.watch("preview")
	opts := []optpreview.Option{optpreview.EventStreams(ch), optpreview.ProgressStreams(o.cliOutput()), optpreview.ErrorProgressStreams(o.cliOutput())}
	if o.refresh {
		opts = append(opts, optpreview.Refresh())
	}
	if o.expectNoChanges {
		opts = append(opts, optpreview.ExpectNoChanges())
	}
	res, err := st.Preview(ctx, opts...)
	p := wait()
	p.summary()
	if err != nil {
		return 0, opError(err, p)
	}
	if o.detailedExitCode && changes(res.ChangeSummary) > 0 {
		return exitChanges, nil
	}
	return exitOK, nil
}

func (o *options) destroy(ctx context.Context, st auto.Stack) (int, error) {
	fmt.Fprintf(o.stdout, "edgeline destroy: stack %s\n", o.stack)
	ch, wait := o.watch("destroy")
	opts := []optdestroy.Option{optdestroy.EventStreams(ch), optdestroy.ProgressStreams(o.cliOutput()), optdestroy.ErrorProgressStreams(o.cliOutput())}
	if o.refresh {
		opts = append(opts, optdestroy.Refresh())
	}
	_, err := st.Destroy(ctx, opts...)
	p := wait()
	p.summary()
	if err != nil {
		return 0, opError(err, p)
	}
	return exitOK, nil
}

func (o *options) outputs(ctx context.Context, st auto.Stack) (int, error) {
	out, err := st.Outputs(ctx)
	if err != nil {
		return 0, fmt.Errorf("read outputs: %w", err)
	}
	if o.json {
		m := map[string]any{}
		for k, v := range out {
			if v.Secret && !o.showSecrets {
				m[k] = "[secret]"
			} else {
				m[k] = v.Value
			}
		}
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(m)
	}
	printOutputs(o.stdout, out, o.showSecrets)
	return exitOK, nil
}

func printOutputs(w io.Writer, out auto.OutputMap, showSecrets bool) {
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := out[k]
		s := "[secret]"
		if !v.Secret || showSecrets {
			switch x := v.Value.(type) {
			case string:
				s = x
			default:
				b, _ := json.Marshal(x)
				s = string(b)
			}
		}
		if strings.Contains(s, "\n") {
			s = "\n" + s
		}
		fmt.Fprintf(w, "%s: %s\n", k, s)
	}
}

func changes(summary map[apitype.OpType]int) int {
	n := 0
	for op, c := range summary {
		if op != apitype.OpSame && op != apitype.OpRead {
			n += c
		}
	}
	return n
}

// opError reduces a failed operation to what went wrong: the resource failures the
// progress view saw, else the engine's own message.
func opError(err error, p *progress) error {
	if len(p.failures) > 0 {
		return fmt.Errorf("%s", strings.Join(p.failures, "; "))
	}
	if auto.IsConcurrentUpdateError(err) {
		return fmt.Errorf("another update of this stack is running; retry when it has finished")
	}
	msg := err.Error()
	if i := strings.Index(msg, "stderr:"); i >= 0 {
		msg = strings.TrimSpace(msg[i+len("stderr:"):])
	}
	return fmt.Errorf("%s", msg)
}
