package check

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// testMux serves the endpoints the HTTP probe tests use.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","n":42,"f":1.50,"up":true,"none":null,"items":[{"id":7,"name":"db"},{"id":8,"tags":["a","b"]}],"obj":{"a":1}}`)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "version 1.2.3 healthy")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s ua=%s x=%s host=%s conn=%s", r.Method, b, r.UserAgent(), r.Header.Get("X-Test"), r.Host, r.Header.Get("Connection"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 2<<20) + "TAIL"))
	})
	return mux
}

func TestProbeHTTP(t *testing.T) {
	srv := httptest.NewServer(testMux())
	defer srv.Close()
	u := srv.URL
	refused := "http://" + closedAddr(t) + "/"
	httpSpec := func(path string, h *HTTPSpec) Spec { return Spec{Type: TypeHTTP, Target: u + path, HTTP: h} }

	runCases(t, NewProber(ProberOptions{}), []probeCase{
		{name: "ok", spec: httpSpec("/ok", nil), wantOK: true, wantStatus: 200, wantDetail: "HTTP/1.1 200"},
		{name: "503 default statuses", spec: httpSpec("/fail", nil), wantErr: "status 503 not in 200-399", wantStatus: 503},
		{name: "503 expected", spec: httpSpec("/fail", &HTTPSpec{ExpectStatus: []int{503}}), wantOK: true, wantStatus: 503},
		{name: "200 not in list", spec: httpSpec("/ok", &HTTPSpec{ExpectStatus: []int{201, 204}}), wantErr: "status 200 not in [201 204]"},
		{name: "404", spec: httpSpec("/nope", nil), wantErr: "status 404"},
		{name: "body contains", spec: httpSpec("/text", &HTTPSpec{BodyContains: "healthy"}), wantOK: true},
		{name: "body lacks", spec: httpSpec("/text", &HTTPSpec{BodyContains: "ok"}), wantErr: `body does not contain "ok"`},
		{name: "regex", spec: httpSpec("/text", &HTTPSpec{BodyRegex: `version \d+\.\d+\.\d+`}), wantOK: true},
		{name: "regex no match", spec: httpSpec("/text", &HTTPSpec{BodyRegex: `version 2\.`}), wantErr: `body does not match /version 2\./`},
		{name: "json string", spec: httpSpec("/ok", &HTTPSpec{JSON: []JSONAssert{{Path: "$.status", Equals: "ok"}}}), wantOK: true},
		{name: "json no prefix, number, bool, null", spec: httpSpec("/ok", &HTTPSpec{JSON: []JSONAssert{
			{Path: "n", Equals: "42"}, {Path: "$.f", Equals: "1.50"}, {Path: "up", Equals: "true"}, {Path: "none", Equals: "null"}}}), wantOK: true},
		{name: "json index", spec: httpSpec("/ok", &HTTPSpec{JSON: []JSONAssert{
			{Path: "$.items[0].name", Equals: "db"}, {Path: "items[1].tags[1]", Equals: "b"}, {Path: "$.obj", Equals: `{"a":1}`}}}), wantOK: true},
		{name: "json mismatch", spec: httpSpec("/ok", &HTTPSpec{JSON: []JSONAssert{{Path: "$.items[0].id", Equals: "8"}}}), wantErr: `json $.items[0].id is "7", want "8"`},
		{name: "json missing key", spec: httpSpec("/ok", &HTTPSpec{JSON: []JSONAssert{{Path: "$.items[0].nope", Equals: "x"}}}), wantErr: `no key "nope" in $.items[0]`},
		{name: "json index out of range", spec: httpSpec("/ok", &HTTPSpec{JSON: []JSONAssert{{Path: "$.items[5]", Equals: "x"}}}), wantErr: "$.items has 2 elements, no index 5"},
		{name: "json not an array", spec: httpSpec("/ok", &HTTPSpec{JSON: []JSONAssert{{Path: "$.status[0]", Equals: "x"}}}), wantErr: "$.status is not an array"},
		{name: "body not json", spec: httpSpec("/text", &HTTPSpec{JSON: []JSONAssert{{Path: "$.a", Equals: "x"}}}), wantErr: "body is not JSON"},
		{name: "latency within", spec: httpSpec("/ok", &HTTPSpec{MaxLatency: Duration(time.Minute)}), wantOK: true},
		// No request completes in a nanosecond, so this must fail.
		{name: "latency exceeded", spec: httpSpec("/ok", &HTTPSpec{MaxLatency: 1}), wantErr: "above max_latency 1ns"},
		{name: "redirect followed", spec: httpSpec("/redirect", &HTTPSpec{JSON: []JSONAssert{{Path: "status", Equals: "ok"}}}), wantOK: true, wantStatus: 200},
		{name: "redirect not followed", spec: httpSpec("/redirect", &HTTPSpec{FollowRedirects: ptr(false), ExpectStatus: []int{302}}), wantOK: true, wantStatus: 302},
		{name: "redirect not followed, 302 unexpected", spec: httpSpec("/redirect", &HTTPSpec{FollowRedirects: ptr(false), ExpectStatus: []int{200}}), wantErr: "status 302 not in [200]"},
		{name: "redirect loop", spec: httpSpec("/loop", &HTTPSpec{MaxRedirects: 3}), wantErr: "too many redirects (max 3)"},
		{name: "redirect loop default max", spec: httpSpec("/loop", nil), wantErr: "too many redirects (max 10)"},
		{name: "method, body, headers, user agent, fresh connection", spec: httpSpec("/echo", &HTTPSpec{
			Method: "post", Body: "hello", Headers: map[string]string{"X-Test": "yes", "Host": "svc.example"},
			BodyContains: "POST hello ua=nocsoc/1 (+probe) x=yes host=svc.example conn=close"}), wantOK: true},
		{name: "custom user agent", spec: httpSpec("/echo", &HTTPSpec{Headers: map[string]string{"User-Agent": "mine"}, BodyContains: "ua=mine "}), wantOK: true},
		// Only the first MiB is read: the tail is never seen.
		{name: "body capped", spec: httpSpec("/big", &HTTPSpec{BodyContains: "TAIL"}), wantErr: `body does not contain "TAIL"`},
		{name: "refused", spec: Spec{Type: TypeHTTP, Target: refused}, wantErr: "connect " + refused[len("http://"):len(refused)-1] + ": connection refused"},
	})
}

func TestProbeHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(testMux())
	// The verify-on case makes the server log a handshake error; keep the
	// test output clean.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cases := []struct {
		name    string
		opts    ProberOptions
		verify  *bool
		wantOK  bool
		wantErr string
	}{
		{name: "self-signed, verify on", verify: nil, wantErr: "certificate verification failed"},
		{name: "self-signed, verify off", verify: ptr(false), wantOK: true},
		{name: "trusted root, verify on", opts: ProberOptions{RootCAs: pool}, wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, Spec{Type: TypeHTTP, Target: srv.URL + "/ok", HTTP: &HTTPSpec{TLSVerify: tc.verify}})
			r := NewProber(tc.opts).Probe(context.Background(), s)
			if r.OK != tc.wantOK || !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("got OK=%v error %q, want OK=%v error containing %q", r.OK, r.Error, tc.wantOK, tc.wantErr)
			}
		})
	}
}

// TestProbeHTTPFreshConnections checks that every probe opens its own
// connection, so a service refusing new connections is seen.
func TestProbeHTTPFreshConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(testMux())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := NewProber(ProberOptions{})
	s := spec(t, Spec{Type: TypeHTTP, Target: srv.URL + "/ok"})
	for range 5 {
		if r := p.Probe(context.Background(), s); !r.OK {
			t.Fatalf("probe failed: %s", r.Error)
		}
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("5 probes opened %d connections, want 5", n)
	}
}

// TestProbeTimeoutAndCancel uses a server that accepts and never answers.
func TestProbeTimeoutAndCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	p := NewProber(ProberOptions{})
	for _, typ := range []string{TypeHTTP, TypeTCP, TypeSMTP, TypeTLS} {
		target := l.Addr().String()
		var tcp *TCPSpec
		switch typ {
		case TypeHTTP:
			target = "http://" + target + "/"
		case TypeTCP:
			tcp = &TCPSpec{Expect: "hello"}
		}
		t.Run(typ+" timeout", func(t *testing.T) {
			s := spec(t, Spec{Type: typ, Target: target, TCP: tcp, Timeout: Duration(100 * time.Millisecond)})
			r := p.Probe(context.Background(), s)
			want := "timeout after 100ms"
			if typ == TypeTCP {
				want = `"hello" not received within 100ms (got "")`
			}
			if r.OK || !strings.Contains(r.Error, want) {
				t.Errorf("got OK=%v error %q, want a timeout", r.OK, r.Error)
			}
		})
		t.Run(typ+" canceled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			s := spec(t, Spec{Type: typ, Target: target, TCP: tcp})
			r := p.Probe(ctx, s)
			if r.OK || !strings.Contains(r.Error, "probe canceled") {
				t.Errorf("got OK=%v error %q, want canceled", r.OK, r.Error)
			}
		})
	}
}

func TestProbePushAndUnknown(t *testing.T) {
	p := NewProber(ProberOptions{})
	r := p.Probe(context.Background(), spec(t, Spec{Type: TypePush}))
	if r.OK || r.Error != "push checks are not probed" || r.Check != "t" || r.Time.IsZero() {
		t.Errorf("push: %+v", r)
	}
	r = p.Probe(context.Background(), Spec{Name: "x", Type: "gopher", Target: "x"})
	if r.OK || !strings.Contains(r.Error, `unknown check type "gopher"`) {
		t.Errorf("unknown type: %+v", r)
	}
}

func TestJSONLookupBadPaths(t *testing.T) {
	doc := map[string]any{"a": []any{"x"}}
	for _, path := range []string{"$.a[", "$.a[x]", "$.a[-1]", "$.a.b"} {
		if _, err := jsonLookup(doc, path); err == nil {
			t.Errorf("jsonLookup(%q) succeeded, want an error", path)
		}
	}
	if v, err := jsonLookup(doc, "$"); err != nil || v == nil {
		t.Errorf(`jsonLookup("$") = %v, %v; want the document`, v, err)
	}
}

// BenchmarkProbeHTTP measures probes per second against a fast loopback
// server, each probe on a fresh connection.
func BenchmarkProbeHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	p := NewProber(ProberOptions{})
	s := spec(b, Spec{Type: TypeHTTP, Target: srv.URL + "/", HTTP: &HTTPSpec{BodyContains: "ok"}})
	var failed atomic.Int64
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if r := p.Probe(ctx, s); !r.OK {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "probes/s")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d probes failed", n, b.N)
	}
}

// httptestServer starts the test mux over plain HTTP and returns its URL.
func httptestServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(testMux())
	t.Cleanup(srv.Close)
	return srv.URL
}
