package detect

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/loadgen/loadgentest"
	"github.com/nocsoc/nocsoc/internal/sigma"
)

// sigmaRules is the SigmaHQ rules directory of the shared corpus.
const sigmaRules = "../../../shared/data/sigma/rules"

// benchRuleFiles picks n rules of the corpus as bench/soc-lib.sh's
// fill_rules does for the end-to-end benchmark: linux/builtin and
// web/webserver_generic in sorted path order, then windows.
func benchRuleFiles(b *testing.B, n int) []string {
	if _, err := os.Stat(sigmaRules); err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("SigmaHQ corpus missing at %s: %v", sigmaRules, err)
		}
		b.Skipf("SigmaHQ corpus missing at %s", sigmaRules)
	}
	var out []string
	for _, group := range [][]string{{"linux/builtin", "web/webserver_generic"}, {"windows"}} {
		var files []string
		for _, dir := range group {
			err := filepath.WalkDir(filepath.Join(sigmaRules, dir), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yml") {
					files = append(files, p)
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		sort.Strings(files)
		out = append(out, files...)
	}
	return out[:min(n, len(out))]
}

// benchEngine compiles the end-to-end benchmark's rules: 120 SigmaHQ
// rules chosen as bench/soc-lib.sh does, and the built-in ones.
func benchEngine(b *testing.B) *sigma.Engine {
	b.Helper()
	dir := b.TempDir()
	for _, f := range benchRuleFiles(b, 120) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return compileEngine(b, []string{dir})
}

// BenchmarkSigmaLoadgenStream measures the Sigma engine as the end-to-end
// benchmark runs it: 120 SigmaHQ rules chosen as bench/soc-lib.sh does,
// plus the built-in rules and correlations, over the load generator's
// stream (sshd, sudo, cron, nginx, postfix, firewall lines) parsed and
// normalized by a real TCP syslog input. One event per op, one core.
func BenchmarkSigmaLoadgenStream(b *testing.B) {
	eng := benchEngine(b)
	const n = 100_000
	evs := loadgentest.Events(b, loadgentest.Frames(b, n), n)
	matches := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := &evs[i%len(evs)]
		matches += len(eng.Match(e, e.Time))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(eng.Stats().RuleEvaluations)/float64(b.N), "evals/event")
	b.ReportMetric(float64(matches)/float64(b.N), "matches/event")
}

// BenchmarkSigmaLoadgenStreamAhead is BenchmarkSigmaLoadgenStream with
// the fields read ahead (sigma.AheadBatch) of each batch of 1,000 events,
// after the engine has learned which: the read-ahead is the input's work
// (outside the timer), MatchAhead detection's.
func BenchmarkSigmaLoadgenStreamAhead(b *testing.B) {
	eng := benchEngine(b)
	const n = 100_000
	evs := loadgentest.Events(b, loadgentest.Frames(b, n), n)
	for i := 0; i < 1<<17; i++ { // learn the fields to read ahead
		e := &evs[i%n]
		eng.Match(e, e.Time)
	}
	aheads := make([]*sigma.AheadBatch, n/1000)
	for k := range aheads {
		aheads[k] = eng.NewAheadBatch(1000)
		for i := k * 1000; i < (k+1)*1000; i++ {
			aheads[k].Add(&evs[i])
		}
	}
	matches := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % n
		e := &evs[j]
		matches += len(eng.MatchAhead(e, aheads[j/1000], j%1000, e.Time))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(matches)/float64(b.N), "matches/event")
	b.ReportMetric(float64(len(eng.AheadFields())), "fields-ahead")
}
