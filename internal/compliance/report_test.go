package compliance

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/opmetrics"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const reportPolicy = `policy: {id: web, name: Web servers}
checks:
  - id: ssh-root
    title: SSH root login disabled
    severity: high
    remediation: Set PermitRootLogin no.
    controls: {pci-dss-4.0: [2.2.6, 8.2.2], iso27001-2022: A.8.5}
    test: {file_matches: {path: /etc/ssh/sshd_config, regex: '^PermitRootLogin no$'}}
  - id: aslr
    title: ASLR on <full>
    controls: {pci-dss-4.0: 2.2.6}
    test: {sysctl: {key: kernel.randomize_va_space, value: "2"}}
  - id: telnet
    title: No telnet
    controls: {pci-dss-4.0: 2.2.5, nist-csf-2.0: PR.PS-05}
    test: {package_absent: telnetd}
`

func reportFixture(t testing.TB) ReportInput {
	pol, err := ParsePolicy("web.yml", []byte(reportPolicy), "api")
	if err != nil {
		t.Fatal(err)
	}
	set, _ := NewSet([]*Policy{pol})
	ex := []Exception{{ID: 3, Endpoint: "ep-b", Check: "aslr", Owner: "Jane Ops", Reason: "vendor kernel, fix in Q1", Expires: t0.Add(90 * 24 * time.Hour),
		CreatedBy: "admin", CreatedAt: t0.Add(-time.Hour)}}
	var results []Result
	for i, h := range []struct{ id, host, sshd, aslr string }{
		{"ep-a", "web-1", "PermitRootLogin no\n", "2"},
		{"ep-b", "web-2", "PermitRootLogin yes\n", "0"},
	} {
		f := NewFacts(h.id, h.host, &agentproto.Inventory{CollectedAt: t0.Add(-time.Duration(i) * time.Minute),
			Packages: []agentproto.Package{{Name: "openssh-server", Version: "1:9.2p1-2+deb12u3"}}},
			&agentproto.Facts{CollectedAt: t0.Add(-time.Duration(i) * time.Minute),
				Files:   []agentproto.FileFact{{Path: "/etc/ssh/sshd_config", Exists: true, Content: h.sshd, HasContent: true}},
				Sysctls: []agentproto.SysctlFact{{Key: "kernel.randomize_va_space", Value: h.aslr, Found: true}}})
		results = append(results, set.Evaluate(f, ex, t0)...)
	}
	return ReportInput{Framework: FrameworkPCI, From: t0.Add(-30 * 24 * time.Hour), To: t0, GeneratedAt: t0.Add(time.Minute), Set: set,
		Results: results, Exceptions: ex,
		Audit: []AuditAction{{ID: 12, Time: t0.Add(-time.Hour), Actor: "admin", Action: "compliance.exception.create", Target: "compliance_exception:3", Hash: "ab12"}},
		ServiceLevel: &ServiceLevel{Incidents: 4, MTTA: opmetrics.Stat{Count: 4, Mean: 90 * time.Second, P50: time.Minute, P90: 3 * time.Minute},
			MTTR: opmetrics.Stat{Count: 3, Mean: 40 * time.Minute, P90: time.Hour}, Uptime: []CheckUptime{{Check: "web-https", Percent: 99.95}}}}
}

func TestReportGolden(t *testing.T) {
	rep, err := BuildReport(reportFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Controls) != 3 || rep.Endpoints != 2 {
		t.Fatalf("controls %d endpoints %d", len(rep.Controls), rep.Endpoints)
	}
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"report.json", func(b *bytes.Buffer) error { return rep.WriteJSON(b) }},
		{"report.csv", func(b *bytes.Buffer) error { return rep.WriteCSV(b) }},
		{"report.html", func(b *bytes.Buffer) error { return rep.WriteHTML(b) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", f.name+".golden")
		if *update {
			if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from %s (run go test ./internal/compliance -run TestReportGolden -update and review the diff)", f.name, golden)
		}
	}
}

func TestReportUnknownFramework(t *testing.T) {
	in := reportFixture(t)
	in.Framework = "sox"
	if _, err := BuildReport(in); err == nil {
		t.Fatal("unknown framework accepted")
	}
}

// benchFacts builds n endpoints' facts for the builtin-like policy of
// 100 checks.
func benchSet(b testing.TB) *Set {
	var src bytes.Buffer
	src.WriteString("policy: {id: bench, name: Bench}\nchecks:\n")
	for i := 0; i < 100; i++ {
		req := i%12 + 1
		fmt.Fprintf(&src, "  - id: c%03d\n    title: Check %d\n    controls: {pci-dss-4.0: '%d.%d', cis-debian-12: '%d.1'}\n    test:\n", i, i, req, i%pciSections[req]+1, i%7+1)
		switch i % 5 {
		case 0:
			fmt.Fprintf(&src, "      file_matches: {path: /etc/f%d.conf, regex: '^\\s*Option%d\\s+yes$'}\n", i%10, i)
		case 1:
			fmt.Fprintf(&src, "      sysctl: {key: net.k%d, value: '1'}\n", i)
		case 2:
			fmt.Fprintf(&src, "      package_min_version: {name: pkg%d, version: '1.2.%d-1'}\n", i, i)
		case 3:
			fmt.Fprintf(&src, "      any: [{package_absent: bad%d}, {port_absent: %d}]\n", i, 1000+i)
		case 4:
			fmt.Fprintf(&src, "      file_mode: {path: /etc/f%d.conf, max_mode: '0644', owner: root}\n", i%10)
		}
	}
	pol, err := ParsePolicy("bench.yml", src.Bytes(), "api")
	if err != nil {
		b.Fatal(err)
	}
	set, _ := NewSet([]*Policy{pol})
	return set
}

func benchFacts(n int) []*Facts {
	out := make([]*Facts, n)
	for e := 0; e < n; e++ {
		inv := &agentproto.Inventory{CollectedAt: t0}
		for i := 0; i < 300; i++ {
			inv.Packages = append(inv.Packages, agentproto.Package{Name: fmt.Sprintf("pkg%d", i), Version: fmt.Sprintf("1.2.%d-%d", i+e%3, 1)})
		}
		for p := 0; p < 20; p++ {
			inv.Ports = append(inv.Ports, agentproto.Port{Proto: "tcp", Addr: "0.0.0.0", Port: 1000 + p*7})
		}
		f := &agentproto.Facts{CollectedAt: t0}
		for i := 0; i < 10; i++ {
			var content bytes.Buffer
			for l := 0; l < 100; l++ {
				fmt.Fprintf(&content, "Option%d %s\n", l, map[bool]string{true: "yes", false: "no"}[(l+e)%3 != 0])
			}
			f.Files = append(f.Files, agentproto.FileFact{Path: fmt.Sprintf("/etc/f%d.conf", i), Exists: true, Mode: 0o644, Owner: "root", Group: "root", Content: content.String(), HasContent: true})
		}
		for i := 0; i < 100; i++ {
			f.Sysctls = append(f.Sysctls, agentproto.SysctlFact{Key: fmt.Sprintf("net.k%d", i), Value: fmt.Sprint((i + e) % 2), Found: true})
		}
		out[e] = NewFacts(fmt.Sprintf("ep-%05d", e), fmt.Sprintf("host-%05d", e), inv, f)
	}
	return out
}

// BenchmarkEvaluate5000 evaluates 100 checks on 5,000 endpoints' facts
// per iteration (target: under 5 s on 2 cores).
func BenchmarkEvaluate5000(b *testing.B) {
	set := benchSet(b)
	facts := benchFacts(5000)
	b.ResetTimer()
	cpu0 := cpuSeconds()
	defer func() { b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op") }()
	for b.Loop() {
		n := 0
		for _, rs := range set.EvaluateMany(facts, nil, t0) {
			n += len(rs)
		}
		if n != 500000 {
			b.Fatal(n)
		}
	}
}

// BenchmarkReport5000 builds a report over 5,000 endpoints' results and
// writes it as CSV (target: under 10 s).
func BenchmarkReport5000(b *testing.B) {
	set := benchSet(b)
	var results []Result
	for _, f := range benchFacts(5000) {
		results = append(results, set.Evaluate(f, nil, t0)...)
	}
	b.ResetTimer()
	cpu0 := cpuSeconds()
	defer func() { b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op") }()
	for b.Loop() {
		rep, err := BuildReport(ReportInput{Framework: FrameworkPCI, From: t0.Add(-time.Hour), To: t0, GeneratedAt: t0, Set: set, Results: results})
		if err != nil {
			b.Fatal(err)
		}
		var w countWriter
		if err := rep.WriteCSV(&w); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(w), "csv-bytes")
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func TestReportCSVDefusesFormulas(t *testing.T) {
	in := reportFixture(t)
	for i := range in.Results {
		in.Results[i].Hostname = `=HYPERLINK("http://evil")`
	}
	rep, err := BuildReport(in)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `,=HYPERLINK`) || !strings.Contains(b.String(), `"'=HYPERLINK(""http://evil"")"`) {
		t.Errorf("formula not defused:\n%s", b.String())
	}
}

// cpuSeconds is the process's user+system CPU time: on a shared machine
// it says more than wall time (the wall figure is what an idle 2-core
// machine would show only when cpu-s/op ÷ 2 ≈ ns/op).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
