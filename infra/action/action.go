// Package action runs the Pulumi program of infra/ through the Automation API: up,
// preview, destroy and outputs, as a CI pipeline or a workstation needs them — never a
// question asked, one progress line per resource step, and errors reduced to what went
// wrong. Each operation is a struct of options with a Run method; the edgeline command
// fills them from its flags.
package action

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

// Stack names the stack an operation works on and where its output goes.
type Stack struct {
	// Dir is the directory holding Pulumi.yaml and Pulumi.<stack>.yaml.
	Dir string
	// Name is the stack's name.
	Name string
	// Backend is the state backend URL; empty means the pulumi CLI's default.
	Backend string
	// SecretsProvider encrypts a new stack's secrets ("passphrase", "awskms://...", ...).
	SecretsProvider string
	// Pulumi is the pulumi CLI to run; empty means pulumi on PATH.
	Pulumi string
	// Verbose also copies the pulumi CLI's own output to Stderr.
	Verbose bool
	// Stdout receives the progress view and outputs; Stderr warnings.
	Stdout, Stderr io.Writer
}

// ConfigError is a problem with the command line, the environment or the stack config,
// found before anything was changed.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// Up creates or updates the stack's resources.
type Up struct {
	Stack
	// Refresh reads the real resources into the state first.
	Refresh bool
	// ExpectNoChanges fails the run if anything would change.
	ExpectNoChanges bool
}

// Run validates the stack config, then updates the stack and prints its outputs.
func (u Up) Run(ctx context.Context) error {
	st, err := u.open(ctx)
	if err != nil {
		return err
	}
	if err := u.validate(ctx, st); err != nil {
		return err
	}
	fmt.Fprintf(u.Stdout, "edgeline up: stack %s\n", u.Name)
	ch, wait := u.watch("up")
	opts := []optup.Option{optup.EventStreams(ch), optup.ProgressStreams(u.cliOutput()), optup.ErrorProgressStreams(u.cliOutput())}
	if u.Refresh {
		opts = append(opts, optup.Refresh())
	}
	if u.ExpectNoChanges {
		opts = append(opts, optup.ExpectNoChanges())
	}
	res, err := st.Up(ctx, opts...)
	p := wait()
	p.summary()
	if err != nil {
		return opError(err, p)
	}
	printOutputs(u.Stdout, res.Outputs, false)
	return nil
}

// Preview shows what Up would change, changing nothing.
type Preview struct {
	Stack
	// Refresh reads the real resources into the state first.
	Refresh bool
	// ExpectNoChanges fails the run if anything would change.
	ExpectNoChanges bool
}

// Run validates the stack config and previews the update; it returns the number of
// resources that would change.
func (pv Preview) Run(ctx context.Context) (int, error) {
	st, err := pv.open(ctx)
	if err != nil {
		return 0, err
	}
	if err := pv.validate(ctx, st); err != nil {
		return 0, err
	}
	fmt.Fprintf(pv.Stdout, "edgeline preview: stack %s\n", pv.Name)
	ch, wait := pv.watch("preview")
	opts := []optpreview.Option{optpreview.EventStreams(ch), optpreview.ProgressStreams(pv.cliOutput()), optpreview.ErrorProgressStreams(pv.cliOutput())}
	if pv.Refresh {
		opts = append(opts, optpreview.Refresh())
	}
	if pv.ExpectNoChanges {
		opts = append(opts, optpreview.ExpectNoChanges())
	}
	res, err := st.Preview(ctx, opts...)
	p := wait()
	p.summary()
	if err != nil {
		return 0, opError(err, p)
	}
	return changes(res.ChangeSummary), nil
}

// Destroy deletes every resource of the stack.
type Destroy struct {
	Stack
	// Refresh reads the real resources into the state first.
	Refresh bool
}

// Run destroys the stack's resources; the stack itself and its config remain.
func (d Destroy) Run(ctx context.Context) error {
	st, err := d.open(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.Stdout, "edgeline destroy: stack %s\n", d.Name)
	ch, wait := d.watch("destroy")
	opts := []optdestroy.Option{optdestroy.EventStreams(ch), optdestroy.ProgressStreams(d.cliOutput()), optdestroy.ErrorProgressStreams(d.cliOutput())}
	if d.Refresh {
		opts = append(opts, optdestroy.Refresh())
	}
	_, err = st.Destroy(ctx, opts...)
	p := wait()
	p.summary()
	if err != nil {
		return opError(err, p)
	}
	return nil
}

// Outputs prints the stack's outputs.
type Outputs struct {
	Stack
	// ShowSecrets prints secret values instead of "[secret]".
	ShowSecrets bool
	// JSON prints one JSON object instead of "key: value" lines.
	JSON bool
}

// Run reads the outputs of the last update and prints them.
func (o Outputs) Run(ctx context.Context) error {
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	out, err := st.Outputs(ctx)
	if err != nil {
		return fmt.Errorf("read outputs: %w", err)
	}
	if !o.JSON {
		printOutputs(o.Stdout, out, o.ShowSecrets)
		return nil
	}
	m := map[string]any{}
	for k, v := range out {
		if v.Secret && !o.ShowSecrets {
			m[k] = "[secret]"
		} else {
			m[k] = v.Value
		}
	}
	enc := json.NewEncoder(o.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// open selects (or creates) the stack with the program inline, in a workspace rooted
// at the program's directory so Pulumi.yaml and Pulumi.<stack>.yaml apply.
func (s Stack) open(ctx context.Context) (auto.Stack, error) {
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return auto.Stack{}, ConfigError{err}
	}
	if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err != nil {
		return auto.Stack{}, ConfigError{fmt.Errorf("no Pulumi.yaml in %s: point --dir at the infra directory", dir)}
	}
	if s.SecretsProvider == "passphrase" && os.Getenv("PULUMI_CONFIG_PASSPHRASE") == "" && os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") == "" {
		return auto.Stack{}, ConfigError{fmt.Errorf("set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE: the stack's secrets are encrypted with it")}
	}
	if s.Pulumi != "" {
		// The CLI, and the plugins it looks up next to it, come first on PATH.
		os.Setenv("PATH", filepath.Dir(s.Pulumi)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{SkipVersionCheck: true})
	if err != nil {
		return auto.Stack{}, ConfigError{fmt.Errorf("the pulumi CLI is needed on PATH (or --pulumi): %w", err)}
	}
	env := map[string]string{"PULUMI_SKIP_UPDATE_CHECK": "1"}
	if s.Backend != "" {
		env["PULUMI_BACKEND_URL"] = s.Backend
		if path, ok := strings.CutPrefix(s.Backend, "file://"); ok && !strings.HasPrefix(path, "~") {
			// A first run in a fresh CI workspace: the state directory does not exist yet.
			if err := os.MkdirAll(path, 0o700); err != nil {
				return auto.Stack{}, fmt.Errorf("state directory: %w", err)
			}
		}
	}
	st, err := auto.UpsertStackInlineSource(ctx, s.Name, "edgeline", stack.Program(dir),
		auto.WorkDir(dir), auto.Pulumi(cmd), auto.EnvVars(env), auto.SecretsProvider(s.SecretsProvider))
	if err != nil {
		return auto.Stack{}, fmt.Errorf("open stack %s: %w", s.Name, err)
	}
	return st, nil
}

// validate parses the stack config as the program will, so a bad config is reported
// before the engine starts, and shows its warnings.
func (s Stack) validate(ctx context.Context, st auto.Stack) error {
	all, err := st.GetAllConfig(ctx)
	if err != nil {
		return fmt.Errorf("read the config of stack %s: %w", s.Name, err)
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
		return ConfigError{fmt.Errorf("%w\n(edit %s)", err, filepath.Join(s.Dir, "Pulumi."+s.Name+".yaml"))}
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(s.Stderr, "edgeline: warning: %s\n", w)
	}
	return nil
}

// watch prints the progress view of an operation's engine events until the channel
// closes; the returned wait blocks until it has.
func (s Stack) watch(verb string) (chan<- events.EngineEvent, func() *progress) {
	ch := make(chan events.EngineEvent)
	p := newProgress(s.Stdout, verb)
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

func (s Stack) cliOutput() io.Writer {
	if s.Verbose {
		return s.Stderr
	}
	return io.Discard
}

func printOutputs(w io.Writer, out auto.OutputMap, showSecrets bool) {
	for _, k := range slices.Sorted(maps.Keys(out)) {
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
