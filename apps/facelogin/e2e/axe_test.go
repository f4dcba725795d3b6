package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The accessibility half of the harness: axe-core, the checker issue 15's reporter used, runs
// on every page state the tests take a picture of (and a few more), in both languages and at
// both viewport sizes, and each violation fails the test.

var axeScript struct {
	once sync.Once
	js   string
	err  error
}

// loadAxe reads axe.min.js from EDGELINE_TEST_AXE once per test run.
func loadAxe(t *testing.T, c config) string {
	t.Helper()
	axeScript.once.Do(func() {
		b, err := os.ReadFile(c.axe)
		axeScript.js, axeScript.err = string(b), err
	})
	if axeScript.err != nil {
		t.Fatalf("read axe-core: %v; run make axe", axeScript.err)
	}
	return axeScript.js
}

// axeViolation is one rule axe-core found broken, with the elements that break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  string `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

// axeRun runs every axe-core rule on the whole page as it is now and returns the violations.
const axeRun = `axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => ({
	id: v.id, impact: v.impact || "", help: v.help,
	nodes: v.nodes.map((n) => ({ target: n.target.join(" "), html: n.html.slice(0, 160), summary: n.failureSummary || "" })),
})))`

// axeCheck runs axe-core on the tab's page as it is now and returns the violations.
func (b *chrome) axeCheck(c config) ([]axeViolation, error) {
	b.t.Helper()
	js := loadAxe(b.t, c)
	ctx, cancel := context.WithTimeout(b.tab, 60*time.Second)
	defer cancel()
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe !== "undefined"`))
	if err == nil && !loaded {
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](js+"\n;true"))
	}
	if err != nil {
		return nil, err
	}
	return chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
}

// accessible runs axe-core on the tab's page and fails the test with each violation, named
// by state (e.g. "de-phone-pin-tries-left").
func (b *chrome) accessible(c config, state string) {
	b.t.Helper()
	vs, err := b.axeCheck(c)
	if err != nil {
		b.t.Errorf("%s: axe-core on %s: %v", b.name, state, err)
		return
	}
	if len(vs) == 0 {
		return
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d accessibility rule(s) broken on %s (%s):", b.name, len(vs), state, b.path())
	for _, v := range vs {
		fmt.Fprintf(&sb, "\n  - %s [%s]: %s", v.ID, v.Impact, v.Help)
		for _, n := range v.Nodes {
			fmt.Fprintf(&sb, "\n      at %s: %s\n        %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n        "))
		}
	}
	b.t.Error(sb.String())
}

// TestAxeFindsViolations checks the checker: on a page with an image without a text
// alternative and a field without a label, axe-core reports both, so the silence of
// accessible on the app's pages means something.
func TestAxeFindsViolations(t *testing.T) {
	c := needConfig(t)
	b := newChrome(t, c, "axe", "", browserOpts{noCamera: true})
	b.do("open a page with two faults", 20*time.Second, chromedp.Navigate(`data:text/html,<!doctype html><html lang="en"><title>faults</title>`+
		`<main><h1>Faults</h1><img src="nothing.png"><input type="text"></main></html>`))
	vs, err := b.axeCheck(c)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, v := range vs {
		found[v.ID] = true
	}
	for _, id := range []string{"image-alt", "label"} {
		if !found[id] {
			t.Errorf("axe-core did not report %s on a page made to break it: %+v", id, vs)
		}
	}
}
