package action

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

func TestProgressView(t *testing.T) {
	const stack = "urn:pulumi:prod::edgeline::"
	step := func(op apitype.OpType, typ, path, name string, diffs ...string) apitype.StepEventMetadata {
		return apitype.StepEventMetadata{Op: op, URN: stack + path + typ + "::" + name, Type: typ, Provider: "urn:pulumi:prod::edgeline::pulumi:providers:edgeline::edgeline::id", Diffs: diffs}
	}
	ev := func(e apitype.EngineEvent) events.EngineEvent { return events.EngineEvent{EngineEvent: e} }
	server := step(apitype.OpUpdate, "edgeline:index:K3sServer", "edgeline:cluster:Cluster$", "server", "taints", "labels")
	agent := step(apitype.OpCreate, "edgeline:index:K3sAgent", "edgeline:cluster:Cluster$", "agent-pi-1")
	component := step(apitype.OpCreate, "edgeline:cluster:Cluster", "", "cluster")
	component.Provider = ""
	var buf bytes.Buffer
	p := newProgress(&buf, "up")
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { clock = clock.Add(1500 * time.Millisecond); return clock }
	for _, e := range []events.EngineEvent{
		ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: component}}),
		ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: server}}),
		ev(apitype.EngineEvent{DiagnosticEvent: &apitype.DiagnosticEvent{URN: server.URN, Severity: "info#err", Message: "root@203.0.113.7:22: k3s server vps up to date\n"}}),
		ev(apitype.EngineEvent{ResOutputsEvent: &apitype.ResOutputsEvent{Metadata: server}}),
		ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: agent}}),
		ev(apitype.EngineEvent{DiagnosticEvent: &apitype.DiagnosticEvent{URN: agent.URN, Severity: "error", Message: "ssh 10.0.0.21: host key does not match"}}),
		ev(apitype.EngineEvent{ResOpFailedEvent: &apitype.ResOpFailedEvent{Metadata: agent}}),
		ev(apitype.EngineEvent{SummaryEvent: &apitype.SummaryEvent{DurationSeconds: 4, ResourceChanges: map[apitype.OpType]int{apitype.OpUpdate: 1, apitype.OpSame: 12}}}),
	} {
		p.event(e)
	}
	p.summary()
	want := `  ~  K3sServer server: updating [labels taints]
     K3sServer server: root@203.0.113.7:22: k3s server vps up to date
  ok K3sServer server: updated (1.5s)
  +  K3sAgent agent-pi-1: creating
  !! K3sAgent agent-pi-1: ssh 10.0.0.21: host key does not match
up: 1 updated, 12 unchanged in 4s
`
	if got := buf.String(); got != want {
		t.Errorf("progress view:\n%s\nwant:\n%s", got, want)
	}
	if len(p.failures) != 1 || !strings.Contains(p.failures[0], "K3sAgent agent-pi-1: ssh 10.0.0.21") {
		t.Errorf("failures = %q", p.failures)
	}
}
