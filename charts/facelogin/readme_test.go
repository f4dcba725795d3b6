package facelogin_test

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestReadmeListsEveryValue keeps README.md's table in step with values.yaml:
// every value (or its parent two levels down, for maps like resources) must
// be listed as `path`.
func TestReadmeListsEveryValue(t *testing.T) {
	b, err := os.ReadFile("values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := func(path []string) bool {
		for i := len(path); i >= 1; i-- {
			if i < len(path) && i < 2 {
				break
			}
			if strings.Contains(string(readme), "| `"+strings.Join(path[:i], ".")+"` |") {
				return true
			}
		}
		return false
	}
	var walk func(prefix []string, v any)
	walk = func(prefix []string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, x := range m {
				walk(append(append([]string{}, prefix...), k), x)
			}
			return
		}
		if !listed(prefix) {
			t.Errorf("README.md does not list value %s", strings.Join(prefix, "."))
		}
	}
	walk(nil, values)
}
