package eventstore

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/query"
)

// benchEventsLayout names the schema and generator of the cached 10M-event
// data set; bump it whenever either changes.
const benchEventsLayout = "events-v3"

const benchEvents = 10_000_000

// benchFilesLayout names the event files' format in the cached data sets;
// bump it whenever eventFileOptions change.
const benchFilesLayout = "f3"

// benchEventsStore opens the cached day of 10M events, generating it with
// SQL the first time. One event in 100 is an sshd "Failed password"; one in
// 100,000 comes from 203.0.113.7. The events are rows of the events table
// (layout "table"), or event files of 16,384 rows each, as the loader
// writes them ("segments"; the store opened not to merge them), or those
// files merged as the loader merges them ("merged").
func benchEventsStore(b *testing.B, layout string) *Store {
	b.Helper()
	path := benchEventsTable(b)
	if layout != "table" {
		path = benchEventsFiles(b, path, layout == "merged")
	}
	s, err := Open(context.Background(), Options{Path: path, Now: func() time.Time { return benchDay.Add(48 * time.Hour) }, MergeRows: benchMergeRows(layout == "merged")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchEventsFiles returns the cached store of the events of the table
// store at src written as event files (merged if merge).
func benchEventsFiles(b *testing.B, src string, merge bool) string {
	b.Helper()
	ctx := context.Background()
	name := "segments"
	if merge {
		name = "merged"
	}
	path := filepath.Join(os.TempDir(), "nocsoc-eventstore-bench-"+benchEventsLayout+"-"+benchFilesLayout+"-"+name+".duckdb")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".tmp"
	for _, p := range []string{tmp, tmp + ".wal", tmp + ".events", tmp + ".journal"} {
		os.RemoveAll(p)
	}
	start := time.Now()
	s, err := Open(ctx, Options{Path: tmp, Now: func() time.Time { return benchDay }, MergeRows: benchMergeRows(merge)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.db.ExecContext(ctx, `ATTACH '`+src+`' AS src (READ_ONLY)`); err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < benchEvents; lo += DefaultLoadRows {
		rows, err := s.db.QueryContext(ctx, `SELECT * FROM src.events WHERE id > ? AND id <= ? ORDER BY id`, lo, lo+DefaultLoadRows)
		if err != nil {
			b.Fatal(err)
		}
		f, err := writeEventFile(s.ev.files.dir, func(fn func(row []driver.Value) error) error {
			vals := make([]any, eventCols)
			ptrs := make([]any, eventCols)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			row := make([]driver.Value, eventCols)
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				for i, v := range vals {
					row[i] = v
				}
				if err := fn(row); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		rows.Close()
		if err != nil {
			b.Fatal(err)
		}
		s.ev.files.add(f)
	}
	for merge && s.mergeOnce() {
	}
	if _, err := s.db.ExecContext(ctx, `DETACH src`); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp+".events", path+".events"); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %s in %s", path, time.Since(start).Round(time.Second))
	return path
}

// benchMergeRows is Options.MergeRows for a layout merged or not (1: no
// file is small enough to merge).
func benchMergeRows(merge bool) int {
	if merge {
		return 0
	}
	return 1
}

// benchEventsTable returns the cached table store, generating it first.
func benchEventsTable(b *testing.B) string {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), "nocsoc-eventstore-bench-"+benchEventsLayout+".duckdb")
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".tmp"
		os.Remove(tmp)
		os.Remove(tmp + ".wal")
		start := time.Now()
		s, err := Open(ctx, Options{Path: tmp, MemoryLimit: "2GB", Now: func() time.Time { return benchDay }, tableOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		gen := fmt.Sprintf(`
			INSERT INTO events
			SELECT i + 1,
				TIMESTAMP '%[2]s' + to_microseconds(i * 8640),
				TIMESTAMP '%[2]s' + to_microseconds(i * 8640 + 1000),
				'host-' || (h %% 200), 'syslog-tcp',
				CASE WHEN i %% 100 = 0 THEN 'Failed password for ' || u || ' from ' || ip || ' port ' || (h %% 60000) || ' ssh2'
					WHEN i %% 100 < 5 THEN 'Accepted publickey for ' || u || ' from ' || ip || ' port ' || (h %% 60000) || ' ssh2'
					WHEN i %% 100 < 60 THEN ip || ' - - "GET /app/' || (h %% 5000) || ' HTTP/1.1" ' || st || ' 512'
					ELSE 'session opened for user ' || u || ' by (uid=0)' END,
				ip, NULL, (h %% 60000)::INTEGER, '192.0.2.1', NULL,
				u, CASE WHEN i %% 100 < 5 THEN 'sshd' WHEN i %% 100 < 60 THEN 'nginx' ELSE 'cron' END,
				NULL,
				CASE WHEN i %% 100 = 0 THEN 'failure' ELSE 'success' END,
				CASE WHEN i %% 100 < 5 THEN 'authentication' ELSE NULL END,
				CASE WHEN i %% 100 BETWEEN 5 AND 59 THEN st ELSE NULL END,
				CASE WHEN i %% 100 BETWEEN 5 AND 59 THEN '/app/' || (h %% 5000) ELSE NULL END,
				'{"process.pid":' || (h %% 30000) || '}',
				'<38>Jan  1 00:00:00 host-' || (h %% 200) || ' app: line ' || i,
				NULL, NULL,
				(md5_number_upper(ip) >> 1)::BIGINT, (md5_number_upper('192.0.2.1') >> 1)::BIGINT,
				0
			FROM (SELECT i, hash(i) AS h,
				CASE WHEN i %% 100000 = 7 THEN '203.0.113.7'
					ELSE '10.' || (hash(i) >> 8) %% 256 || '.' || (hash(i) >> 16) %% 256 || '.' || (hash(i) >> 24) %% 256 END AS ip,
				'user' || (hash(i) >> 32) %% 1000 AS u,
				CASE WHEN hash(i) %% 10 = 0 THEN 404 ELSE 200 END AS st
				FROM range(%[1]d) t(i))`, benchEvents, benchDayFrom)
		if _, err := s.db.ExecContext(ctx, gen); err != nil {
			s.Close()
			b.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
			s.Close()
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %s in %s", path, time.Since(start).Round(time.Second))
	}
	return path
}

// benchLayouts runs bench on each layout of the 10M events.
func benchLayouts(b *testing.B, bench func(b *testing.B, s *Store)) {
	for _, l := range []string{"table", "segments", "merged"} {
		b.Run(l, func(b *testing.B) { bench(b, benchEventsStore(b, l)) })
	}
}

func benchSearch(b *testing.B, q string, wantMin int) {
	benchLayouts(b, func(b *testing.B, s *Store) { benchSearchIn(b, s, q, wantMin) })
}

func benchSearchIn(b *testing.B, s *Store, q string, wantMin int) {
	ctx := context.Background()
	n, err := query.Parse(q)
	if err != nil {
		b.Fatal(err)
	}
	eq := EventQuery{Where: n, Limit: 100}
	evs, _, err := s.SearchEvents(ctx, eq)
	if err != nil || len(evs) < wantMin {
		b.Fatalf("%d events, %v", len(evs), err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.SearchEvents(ctx, eq); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
}

// BenchmarkSearchEventsField is a field query over 10M events (100 match).
func BenchmarkSearchEventsField(b *testing.B) { benchSearch(b, "source.ip:203.0.113.7", 100) }

// BenchmarkSearchEventsPhrase is a phrase search over 10M events; the newest
// 100 of 100,000 matches are returned.
func BenchmarkSearchEventsPhrase(b *testing.B) { benchSearch(b, `"Failed password"`, 100) }

// BenchmarkSearchEventsRarePhrase is a phrase that matches nothing: the
// whole message column is scanned.
func BenchmarkSearchEventsRarePhrase(b *testing.B) { benchSearch(b, `"no such phrase"`, 0) }

// BenchmarkEventStatsTopIP counts the top source IPs of the failures.
func BenchmarkEventStatsTopIP(b *testing.B) {
	benchLayouts(b, func(b *testing.B, s *Store) {
		ctx := context.Background()
		q := StatsQuery{Where: query.Field{Name: "event.outcome", Op: ":", Value: "failure"}, By: "source.ip"}
		for b.Loop() {
			if _, err := s.EventStats(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
	})
}

// appendBenchBatch fills batch with normalized sshd-like events numbered
// from n on.
func appendBenchBatch(batch []event.Event, n int) {
	for i := range batch {
		t := benchDay.Add(time.Duration(n) * time.Millisecond)
		ip := fmt.Sprintf("10.%d.%d.%d", n%256, (n/256)%256, n%200)
		msg := "Failed password for root from " + ip + " port 4242 ssh2"
		batch[i] = event.Event{Time: t, Received: t, Host: "host-1", Input: "syslog-tcp",
			Raw: "<38>Jan  1 00:00:00 host-1 sshd[123]: " + msg,
			Fields: map[string]any{"message": msg, "source.ip": ip, "source.port": float64(4242),
				"user.name": "root", "process.name": "sshd", "process.pid": float64(123),
				"event.outcome": "failure", "event.category": "authentication", "log.syslog.severity": float64(6)}}
		n++
	}
}

// BenchmarkAppendEvents measures AppendEvents into a file in batches of
// 1000 normalized sshd/nginx-like events, each call acknowledged (durable
// in the journal), and then the loader moving them all into DuckDB: the
// timer and cpu-µs/event (the whole process's CPU time, DuckDB's threads
// included) run until every event is in the table. The batches are built
// before the timer starts.
func BenchmarkAppendEvents(b *testing.B) {
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "events.duckdb")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const batchSize = 1000
	batches := make([][]event.Event, b.N)
	for i := range batches {
		batches[i] = make([]event.Event, batchSize)
		appendBenchBatch(batches[i], i*batchSize)
	}
	b.ResetTimer()
	c0 := processCPU()
	for i := range b.N {
		if _, err := s.AppendEvents(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.EventCount(ctx); err != nil { // loads what is pending
		b.Fatal(err)
	}
	cpu := processCPU() - c0
	n := b.N * batchSize
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
}

// BenchmarkAppendEventsParallel is BenchmarkAppendEvents with four callers
// at once, as the ingest manager calls: their batches share commits.
func BenchmarkAppendEventsParallel(b *testing.B) {
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "events.duckdb")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const batchSize, callers = 1000, 4
	batches := make([][]event.Event, callers)
	for i := range batches {
		batches[i] = make([]event.Event, batchSize)
	}
	var (
		n   int
		cpu time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		for _, batch := range batches {
			appendBenchBatch(batch, n)
			n += batchSize
		}
		b.StartTimer()
		c0 := processCPU()
		var wg sync.WaitGroup
		for _, batch := range batches {
			wg.Go(func() {
				if _, err := s.AppendEvents(ctx, batch); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		cpu += processCPU() - c0
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
}

// encodeBenchEvents are two events as the syslog input and the normalizers
// make them from the load generator's mix (an sshd failure, an nginx
// access line): every field a journal row encodes.
func encodeBenchEvents() []event.Event {
	t := benchDay
	sshd := "Failed password for deploy from 198.51.100.193 port 59598 ssh2"
	nginx := `10.0.1.34 - - [27/Nov/2026:19:24:04 +0000] "GET /api/v1/items HTTP/1.1" 200 5534 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"`
	syslog := func(pri, pid float64, app string) map[string]any {
		return map[string]any{"input.name": "syslog-tcp", "log.source.address": "127.0.0.1:5555",
			"log.syslog.priority": pri, "log.syslog.severity.code": float64(int(pri) % 8), "log.syslog.severity.name": event.SyslogSeverityNames[int(pri)%8],
			"log.syslog.facility.code": float64(int(pri) / 8), "log.syslog.facility.name": event.SyslogFacilityNames[int(pri)/8],
			"process.name": app, "log.syslog.procid": fmt.Sprint(pid), "process.pid": pid}
	}
	a := syslog(86, 53879, "sshd")
	for k, v := range map[string]any{"message": sshd, "event.action": "ssh_login", "event.category": "authentication",
		"event.dataset": "sshd", "event.module": "system", "event.outcome": "failure", "source.ip": "198.51.100.193",
		"source.port": float64(59598), "user.name": "deploy"} {
		a[k] = v
	}
	b := syslog(190, 37781, "nginx")
	for k, v := range map[string]any{"message": nginx, "event.action": "http_request", "event.category": "web",
		"event.dataset": "nginx.access", "event.module": "nginx", "event.outcome": "success", "source.ip": "10.0.1.34",
		"http.request.method": "GET", "http.response.status_code": float64(200), "http.response.body.bytes": float64(5534),
		"http.version": "1.1", "url.path": "/api/v1/items", "url.original": "/api/v1/items",
		"user_agent.original": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"} {
		b[k] = v
	}
	return []event.Event{
		{Time: t, Received: t, Host: "web2", Input: "syslog-tcp", Raw: "<86>Nov 27 19:24:04 web2 sshd[53879]: " + sshd, Fields: a},
		{Time: t, Received: t, Host: "bastion", Input: "syslog-tcp", Raw: "<190>Nov 27 19:24:04 bastion nginx[37781]: " + nginx, Fields: b},
	}
}

// BenchmarkEncodeRow measures encoding events as journal rows, which the
// inputs do for every event before the group commit.
func BenchmarkEncodeRow(b *testing.B) {
	evs := encodeBenchEvents()
	var rb rowBuilder
	var buf []byte
	var err error
	for b.Loop() {
		buf = buf[:0]
		for i := range evs {
			if buf, err = rb.encode(buf, &evs[i], benchDay); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
