package action

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// progress prints an operation's engine events as one line per resource step, for CI
// logs: plain text, no cursor movement, secrets never printed (the engine sends none).
type progress struct {
	w        io.Writer
	verb     string
	now      func() time.Time
	started  map[string]time.Time
	failures []string
	summ     *apitype.SummaryEvent
	last     string
}

func newProgress(w io.Writer, verb string) *progress {
	return &progress{w: w, verb: verb, now: time.Now, started: map[string]time.Time{}}
}

// label names a resource for people: its type's last segment and its name.
func label(urn string) string {
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return urn
	}
	typ := parts[len(parts)-2]
	if i := strings.LastIndexByte(typ, '$'); i >= 0 {
		typ = typ[i+1:]
	}
	if i := strings.LastIndexByte(typ, ':'); i >= 0 {
		typ = typ[i+1:]
	}
	return typ + " " + parts[len(parts)-1]
}

var doing = map[apitype.OpType][2]string{
	apitype.OpCreate:            {"+", "creating"},
	apitype.OpUpdate:            {"~", "updating"},
	apitype.OpDelete:            {"-", "deleting"},
	apitype.OpReplace:           {"+-", "replacing"},
	apitype.OpCreateReplacement: {"+-", "creating replacement"},
	apitype.OpDeleteReplaced:    {"+-", "deleting replaced"},
	apitype.OpRefresh:           {"~", "refreshing"},
}

var done = map[apitype.OpType]string{
	apitype.OpCreate: "created", apitype.OpUpdate: "updated", apitype.OpDelete: "deleted",
	apitype.OpReplace: "replaced", apitype.OpCreateReplacement: "replacement created",
	apitype.OpDeleteReplaced: "replaced one deleted",
}

func (p *progress) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if s == p.last {
		return
	}
	p.last = s
	fmt.Fprintln(p.w, s)
}

func (p *progress) event(e events.EngineEvent) {
	switch {
	case e.ResourcePreEvent != nil:
		m := e.ResourcePreEvent.Metadata
		d, ok := doing[m.Op]
		// Only custom resources are shown: components and default providers are not
		// steps a person waits for.
		if !ok || m.Provider == "" || strings.HasPrefix(m.Type, "pulumi:") {
			return
		}
		p.started[m.URN] = p.now()
		what := d[1]
		if p.verb == "preview" {
			what = "would be " + done[m.Op]
			if done[m.Op] == "" {
				what = "would be " + string(m.Op)
			}
		}
		if len(m.Diffs) > 0 && m.Op != apitype.OpCreate {
			what += " [" + strings.Join(sortedCopy(m.Diffs), " ") + "]"
		}
		p.line("  %-2s %s: %s", d[0], label(m.URN), what)
	case e.ResOutputsEvent != nil:
		m := e.ResOutputsEvent.Metadata
		t, ok := p.started[m.URN]
		if !ok || p.verb == "preview" || done[m.Op] == "" {
			return
		}
		p.line("  ok %s: %s (%s)", label(m.URN), done[m.Op], p.now().Sub(t).Round(100*time.Millisecond))
	case e.DiagnosticEvent != nil:
		d := e.DiagnosticEvent
		msg := strings.TrimSpace(d.Message)
		if msg == "" || d.URN == "" {
			return
		}
		switch d.Severity {
		case "error":
			p.failures = append(p.failures, label(d.URN)+": "+msg)
			p.line("  !! %s: %s", label(d.URN), msg)
		case "warning":
			p.line("  w  %s: %s", label(d.URN), msg)
		case "info", "info#err":
			for _, l := range strings.Split(msg, "\n") {
				p.line("     %s: %s", label(d.URN), l)
			}
		}
	case e.SummaryEvent != nil:
		p.summ = e.SummaryEvent
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// summary prints the engine's count of changes.
func (p *progress) summary() {
	if p.summ == nil {
		return
	}
	var parts []string
	for _, op := range []apitype.OpType{apitype.OpCreate, apitype.OpUpdate, apitype.OpReplace, apitype.OpDelete, apitype.OpSame} {
		if n := p.summ.ResourceChanges[op]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, map[apitype.OpType]string{
				apitype.OpCreate: "created", apitype.OpUpdate: "updated", apitype.OpReplace: "replaced",
				apitype.OpDelete: "deleted", apitype.OpSame: "unchanged"}[op]))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no resources"}
	}
	verb := p.verb
	if verb == "preview" {
		verb = "preview (nothing changed)"
	}
	fmt.Fprintf(p.w, "%s: %s in %ds\n", verb, strings.Join(parts, ", "), p.summ.DurationSeconds)
}
