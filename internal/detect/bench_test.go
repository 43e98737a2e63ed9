package detect

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/ingest"
	"github.com/nocsoc/nocsoc/internal/loadgen"
	"github.com/nocsoc/nocsoc/internal/normalize"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/rules"
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

// collectSink keeps every event the ingest manager delivers.
type collectSink struct {
	mu   sync.Mutex
	evs  []event.Event
	want int
	done chan struct{}
}

func (s *collectSink) Write(_ context.Context, evs []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, evs...)
	if len(s.evs) >= s.want {
		select {
		case s.done <- struct{}{}:
		default:
		}
	}
	return nil
}

// loadgenEvents sends n lines of the load generator's mixed Linux stream
// through a TCP syslog input on loopback and returns the normalized events,
// as detection receives them in the server.
func loadgenEvents(b *testing.B, n int) []event.Event {
	gen, err := loadgen.NewSyslogGen(2, loadgen.FramingOctet)
	if err != nil {
		b.Fatal(err)
	}
	var frames []byte
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for i := range n {
		frames = gen.Append(frames, t0.Add(time.Duration(i)*20*time.Microsecond))
	}
	sink := &collectSink{want: n, done: make(chan struct{}, 1)}
	m := ingest.NewManager(ingest.Options{Sink: sink, Normalize: normalize.Normalize, Location: time.UTC})
	if err := m.Start(context.Background(), ingest.Config{Syslog: []ingest.SyslogInput{{Name: "syslog-tcp", Protocol: "tcp", Listen: "127.0.0.1:0"}}}); err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	c, err := net.Dial("tcp", m.Addrs()["syslog-tcp"].String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(frames); err != nil {
		b.Fatal(err)
	}
	select {
	case <-sink.done:
	case <-time.After(time.Minute):
		b.Fatalf("ingest delivered %d of %d events in a minute", len(sink.evs), n)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return sink.evs[:n]
}

// BenchmarkSigmaLoadgenStream measures the Sigma engine as the end-to-end
// benchmark runs it: 120 SigmaHQ rules chosen as bench/soc-lib.sh does,
// plus the built-in rules and correlations, over the load generator's
// stream (sshd, sudo, cron, nginx, postfix, firewall lines) parsed and
// normalized by a real TCP syslog input. One event per op, one core.
func BenchmarkSigmaLoadgenStream(b *testing.B) {
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
	rs, errs := LoadRules([]string{dir}, rules.Builtin)
	if len(errs) > 0 {
		b.Fatalf("rules: %v", errs)
	}
	eng, cerrs := sigma.Compile(rs, sigma.DefaultPipeline())
	if len(cerrs) > 0 {
		b.Fatalf("compile: %v", cerrs)
	}
	evs := loadgenEvents(b, 100_000)
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
