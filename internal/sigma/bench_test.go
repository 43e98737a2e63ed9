package sigma

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// benchRules returns the first n corpus rules that compile, by sorted
// path: four fifths Windows, one fifth Linux.
func benchRules(b *testing.B, n int) []*Rule {
	b.Helper()
	all, _ := LoadDir(corpusPath(b))
	sort.SliceStable(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	want := map[string]int{"windows": n * 4 / 5, "linux": n - n*4/5}
	var out []*Rule
	p := DefaultPipeline()
	for _, r := range all {
		if want[r.Logsource.Product] == 0 {
			continue
		}
		if _, errs := Compile([]*Rule{r}, p); len(errs) > 0 {
			continue
		}
		want[r.Logsource.Product]--
		out = append(out, r)
	}
	return out
}

// benchEvents builds a realistic mix: Sysmon process creation, network
// and registry events, Security logons, and Linux sshd/sudo/cron lines.
func benchEvents() []Event {
	images := []string{`C:\Windows\System32\svchost.exe`, `C:\Program Files\Google\Chrome\Application\chrome.exe`,
		`C:\Windows\explorer.exe`, `C:\Windows\System32\cmd.exe`, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
		`C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`, `C:\Windows\System32\conhost.exe`}
	cmds := []string{`C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule`,
		`"C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --field-trial-handle=1234,5678 --lang=en-US --num-raster-threads=4`,
		`C:\Windows\Explorer.EXE`, `cmd.exe /c echo hello > C:\Users\bob\AppData\Local\Temp\x.txt`,
		`powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\scripts\inventory.ps1`,
		`"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "C:\Users\bob\Documents\report.docx"`,
		`\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1`}
	var evs []Event
	for i := 0; i < 700; i++ {
		k := i % len(images)
		switch i % 10 {
		case 0, 1, 2, 3:
			evs = append(evs, MapEvent{"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1.0, "Computer": "ws-" + fmt.Sprint(i%13),
				"Image": images[k], "CommandLine": cmds[k], "ParentImage": images[(k+2)%len(images)], "ParentCommandLine": cmds[(k+2)%len(cmds)],
				"User": `CORP\bob`, "IntegrityLevel": "Medium", "OriginalFileName": "x.exe", "CurrentDirectory": `C:\Users\bob\`,
				"Hashes": "SHA256=0123456789ABCDEF", "ProcessId": float64(1000 + i), "ParentProcessId": 4.0})
		case 4:
			evs = append(evs, MapEvent{"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 3.0, "Image": images[k],
				"DestinationIp": fmt.Sprintf("10.0.%d.%d", i%5, i%200), "DestinationPort": 443.0, "Initiated": "true", "DestinationHostname": "example.com"})
		case 5:
			evs = append(evs, MapEvent{"Channel": "Security", "EventID": 4624.0, "LogonType": 3.0, "TargetUserName": "bob",
				"IpAddress": "10.1.2.3", "WorkstationName": "WS1", "AuthenticationPackageName": "Kerberos"})
		case 6, 7:
			evs = append(evs, MapEvent{"event.dataset": "sshd", "process.name": "sshd", "host.name": "web-1",
				"message":   fmt.Sprintf("Failed password for invalid user admin from 203.0.113.%d port 52%03d ssh2", i%250, i%1000),
				"source.ip": fmt.Sprintf("203.0.113.%d", i%250), "user.name": "admin", "event.outcome": "failure"})
		case 8:
			evs = append(evs, MapEvent{"event.dataset": "sudo", "process.name": "sudo", "host.name": "web-1",
				"message": "bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx", "user.name": "bob"})
		case 9:
			evs = append(evs, MapEvent{"process.name": "CRON", "log.syslog.facility": "cron", "host.name": "db-1",
				"message": "(root) CMD (/usr/local/bin/backup.sh >/dev/null 2>&1)"})
		}
	}
	return evs
}

func benchEngine(b *testing.B, n int) {
	rules := benchRules(b, n)
	if len(rules) < n {
		b.Fatalf("only %d rules", len(rules))
	}
	eng, errs := Compile(rules, nil)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	evs := benchEvents()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng.Match(evs[i%len(evs)], t0.Add(time.Duration(i)*time.Millisecond))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkEngine100(b *testing.B)  { benchEngine(b, 100) }
func BenchmarkEngine1000(b *testing.B) { benchEngine(b, 1000) }

// BenchmarkValueCountSpray measures a value_count correlation (password
// spraying: distinct users from one source) while one source cycles
// through 2,000 user names, so its group holds the most values it keeps
// (1,024): the cost per event of a group that large.
func BenchmarkValueCountSpray(b *testing.B) {
	src := baseRules + "---\ntitle: spray\nid: c1\nauthor: test\ncorrelation:\n  type: value_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 10m\n  condition: {field: user.name, gte: 100000}\n"
	rules, errs := ParseRule("spray.yml", []byte(src))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	eng, cerrs := Compile(rules, nil)
	if len(cerrs) > 0 {
		b.Fatal(cerrs)
	}
	evs := make([]MapEvent, 2000)
	for i := range evs {
		evs[i] = sshEvent("failure", "198.51.100.9", fmt.Sprintf("user%d", i))
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng.Match(evs[i%len(evs)], t0.Add(time.Duration(i)*time.Millisecond))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
