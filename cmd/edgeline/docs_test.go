package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsCommands checks every edgeline command line docs/deploy.md shows (in sh blocks
// and code spans): the commands exist, and so do the flags, with a value where they
// take one. The flags are read from the command's own -h output.
func TestDocsCommands(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, span := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(string(doc), -1) {
		lines = append(lines, span[1])
	}
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		lines = append(lines, strings.Split(block[1], "\n")...)
	}
	seen := 0
	for _, line := range lines {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "edgeline" && f[0] != "bin/edgeline") {
			continue
		}
		seen++
		if err := checkCommandLine(f[1:]); err != "" {
			t.Errorf("docs/deploy.md: %q: %s", strings.TrimSpace(line), err)
		}
	}
	if seen < 5 {
		t.Fatalf("found only %d edgeline command lines in docs/deploy.md: is the parsing still right?", seen)
	}
}

// checkCommandLine checks the arguments after "edgeline"; "" means they are fine.
func checkCommandLine(args []string) string {
	usage := flagsOf()
	command := ""
	if args[0] == "images" {
		if len(args) < 2 || (args[1] != "build" && args[1] != "push") {
			return "edgeline images takes build or push"
		}
		command, usage, args = "images "+args[1], flagsOf("images", args[1]), args[2:]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if name, ok := strings.CutPrefix(a, "-"); ok {
			name = strings.TrimPrefix(name, "-")
			name, _, hasValue := strings.Cut(name, "=")
			takesValue, known := usage[name]
			switch {
			case !known:
				return strings.TrimSpace("edgeline "+command) + " has no flag -" + name
			case takesValue && !hasValue:
				i++ // the value
			}
			continue
		}
		if command != "" {
			return "unexpected argument " + a
		}
		if !slices.Contains([]string{"up", "preview", "destroy", "outputs"}, a) {
			return "unknown command " + a
		}
		command = a
	}
	return ""
}

// flagsOf runs `edgeline ARGS -h` and returns its flags, each with whether it takes a
// value (flag's usage output names a type after the flag).
func flagsOf(args ...string) map[string]bool {
	var out bytes.Buffer
	run(context.Background(), append(args, "-h"), io.Discard, &out)
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -(\S+)( \S+)?`).FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = m[2] != ""
	}
	return flags
}
