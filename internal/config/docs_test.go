package config

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const fullExampleMarker = "<!-- full example: internal/config/testdata/full.yaml -->"

// yamlBlocks returns the ```yaml code blocks of a markdown text, each with
// the line of its opening fence and whether the full-example marker
// precedes it.
func yamlBlocks(md string) (blocks []string, fenceLines []int, isFull []bool) {
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```yaml" {
			continue
		}
		start := i
		var b strings.Builder
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.WriteString(lines[i] + "\n")
		}
		blocks = append(blocks, b.String())
		fenceLines = append(fenceLines, start+1)
		isFull = append(isFull, start > 0 && strings.TrimSpace(lines[start-1]) == fullExampleMarker)
	}
	return blocks, fenceLines, isFull
}

// TestDocsExample keeps docs/config.md honest: its complete example is
// testdata/full.yaml byte for byte, and every YAML block on the page loads.
func TestDocsExample(t *testing.T) {
	md, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	blocks, fenceLines, isFull := yamlBlocks(string(md))
	found := 0
	for i, b := range blocks {
		if _, err := Load("docs/config.md block at line "+strconv.Itoa(fenceLines[i]), b); err != nil {
			t.Errorf("YAML block at docs/config.md:%d does not load: %v", fenceLines[i], err)
		}
		if isFull[i] {
			found++
			if b != string(full) {
				t.Errorf("docs/config.md:%d: the complete example differs from testdata/full.yaml; copy the file into the doc", fenceLines[i])
			}
		}
	}
	if found != 1 {
		t.Errorf("docs/config.md has %d complete examples marked %q, want 1", found, fullExampleMarker)
	}
	if len(blocks) < 2 {
		t.Errorf("docs/config.md has %d YAML blocks, want the snippets and the complete example", len(blocks))
	}
}

// TestDocsEveryKey checks that each key the parser accepts appears in the
// reference, so a field added to a struct cannot go undocumented.
func TestDocsEveryKey(t *testing.T) {
	md, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(md)
	// seen stops the walk at recursive types (a route holds routes).
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, parent string)
	walk = func(typ reflect.Type, parent string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() || seen[typ] {
			return
		}
		seen[typ] = true
		for key, i := range yamlFields(typ) {
			if !strings.Contains(doc, "`"+key+"`") && !strings.Contains(doc, "`"+parent+"."+key+"`") {
				t.Errorf("docs/config.md does not mention `%s` (in %s)", key, typeName(typ))
			}
			walk(typ.Field(i).Type, key)
		}
	}
	walk(reflect.TypeFor[Config](), "")
}
