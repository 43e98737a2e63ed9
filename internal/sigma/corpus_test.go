package sigma

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const corpusDir = "../../../shared/data/sigma"

func corpusPath(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing at %s: %v", corpusDir, err)
		}
		t.Skipf("corpus missing at %s", corpusDir)
	}
	return corpusDir
}

// TestCorpus loads and compiles the SigmaHQ corpus and writes the list of
// rules that fail to testdata/corpus_failures.md (included in docs/sigma.md).
func TestCorpus(t *testing.T) {
	dir := corpusPath(t)
	rules, loadErrs := LoadDir(dir)
	eng, compErrs := Compile(rules, nil)
	total := len(rules) + len(loadErrs)
	ok := eng.Stats().Rules + eng.Stats().Correlations
	failed := append(append([]error{}, loadErrs...), compErrs...)
	t.Logf("corpus: %d rules, %d loaded and compiled, %d failed", total, ok, len(failed))
	if float64(ok) < 0.99*float64(total) {
		t.Errorf("only %d of %d rules load and compile (< 99%%)", ok, total)
	}
	for _, r := range rules {
		if r.Author == "" && r.Correlation == nil {
			t.Logf("no author: %s", r.Path)
		}
	}
	var lines []string
	for _, err := range failed {
		var le *LoadError
		if !errors.As(err, &le) {
			t.Errorf("error is not a *LoadError: %v", err)
			continue
		}
		rel, _ := filepath.Rel(dir, le.Path)
		lines = append(lines, fmt.Sprintf("| `%s` | %s |", rel, strings.ReplaceAll(le.Reason, "|", `\|`)))
	}
	sort.Strings(lines)
	out := fmt.Sprintf("%d of %d corpus rules load and compile with the default pipeline; %d do not:\n\n| rule | reason |\n|---|---|\n%s\n",
		ok, total, len(failed), strings.Join(lines, "\n"))
	if *update {
		if err := os.WriteFile("testdata/corpus_failures.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
