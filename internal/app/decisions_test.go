package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/store"
)

// pull calls the bouncer API with key and returns the body, failing the
// test when the status differs from want.
func (h *harness) pull(key, path string, want int) []byte {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.url+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		h.t.Fatalf("GET %s: status %d, want %d; body: %s", path, resp.StatusCode, want, b)
	}
	return b
}

type csDecision struct {
	ID       int64  `json:"id"`
	Origin   string `json:"origin"`
	Type     string `json:"type"`
	Scope    string `json:"scope"`
	Value    string `json:"value"`
	Duration string `json:"duration"`
	Scenario string `json:"scenario"`
	Until    string `json:"until"`
}

type csStream struct {
	New     []csDecision `json:"new"`
	Deleted []csDecision `json:"deleted"`
}

func (h *harness) stream(key string, startup bool) csStream {
	h.t.Helper()
	b := h.pull(key, fmt.Sprintf("/v1/decisions/stream?startup=%t", startup), http.StatusOK)
	// CrowdSec's shape: exactly the two keys, each an array or null.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		h.t.Fatalf("stream reply %s: %v", b, err)
	}
	if len(raw) != 2 || raw["new"] == nil || raw["deleted"] == nil {
		h.t.Fatalf("stream reply %s: want exactly the keys new and deleted", b)
	}
	var s csStream
	if err := json.Unmarshal(b, &s); err != nil {
		h.t.Fatalf("stream reply %s: %v", b, err)
	}
	return s
}

func values(ds []csDecision) string {
	var v []string
	for _, d := range ds {
		v = append(v, d.Value)
	}
	return strings.Join(v, ",")
}

func TestDecisionsAndBouncerAPI(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	h := startWith(t, app.Options{Now: clock.Now})

	var bo struct {
		APIKey  string `json:"api_key"`
		Bouncer struct {
			ID int64 `json:"id"`
		} `json:"bouncer"`
	}
	h.do("POST", "/api/v1/bouncers", `{"name":"edge-firewall","expires_in":"48h"}`, http.StatusCreated, &bo)
	if !strings.HasPrefix(bo.APIKey, "nsc_") {
		t.Fatalf("api_key %q: want a new nsc_ key", bo.APIKey)
	}
	key := bo.APIKey

	// Nothing yet: CrowdSec answers with nulls, not empty arrays.
	if got := strings.TrimSpace(string(h.pull(key, "/v1/decisions/stream?startup=true", http.StatusOK))); got != `{"new":null,"deleted":null}` {
		t.Errorf("empty stream = %s", got)
	}
	if got := strings.TrimSpace(string(h.pull(key, "/v1/decisions", http.StatusOK))); got != "null" {
		t.Errorf("empty GET /v1/decisions = %s, want null", got)
	}

	var d1, d2 struct {
		ID        int64  `json:"id"`
		Status    string `json:"status"`
		Endpoints any    `json:"endpoints"`
		Origin    string `json:"origin"`
	}
	h.do("POST", "/api/v1/decisions", `{"type":"ban","scope":"ip","value":"203.0.113.9","duration":"10m","endpoints":"all","reason":"ssh brute force"}`, http.StatusCreated, &d1)
	if d1.Status != "active" || d1.Endpoints != "all" || d1.Origin != "person" {
		t.Errorf("created decision = %+v", d1)
	}
	h.do("POST", "/api/v1/decisions", `{"type":"ban","scope":"range","value":"198.51.100.0/24","duration":"1h","reason":"scanner net"}`, http.StatusCreated, &d2)

	s := h.stream(key, true)
	if len(s.New) != 2 || s.Deleted != nil {
		t.Fatalf("startup stream = %+v, want 2 new and deleted null", s)
	}
	want := csDecision{ID: d1.ID, Origin: "nocsoc", Type: "ban", Scope: "Ip", Value: "203.0.113.9", Duration: "10m0s",
		Scenario: "ssh brute force", Until: "2026-03-01T12:10:00Z"}
	if s.New[0] != want {
		t.Errorf("stream decision = %+v\nwant %+v", s.New[0], want)
	}
	if s.New[1].Scope != "Range" || s.New[1].Value != "198.51.100.0/24" || s.New[1].Duration != "1h0m0s" {
		t.Errorf("range decision = %+v", s.New[1])
	}

	// A poll with nothing changed returns nulls.
	clock.Advance(time.Second)
	if s := h.stream(key, false); s.New != nil || s.Deleted != nil {
		t.Errorf("unchanged poll = %+v, want nulls", s)
	}

	// Add one, revoke one: the next poll carries exactly those.
	h.do("POST", "/api/v1/decisions", `{"value":"192.0.2.7","reason":"malware c2"}`, http.StatusCreated, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/decisions/%d", d1.ID), "", http.StatusOK, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/decisions/%d", d1.ID), "", http.StatusConflict, nil)
	s = h.stream(key, false)
	if values(s.New) != "192.0.2.7" || values(s.Deleted) != "203.0.113.9" {
		t.Errorf("poll after add+revoke: new %q deleted %q", values(s.New), values(s.Deleted))
	}
	if len(s.New) == 1 && s.New[0].Duration != "4h0m0s" {
		t.Errorf("default duration: %q, want 4h0m0s", s.New[0].Duration)
	}

	// The 1h range expires on the injected clock; the 4h ban does not.
	clock.Advance(2 * time.Hour)
	s = h.stream(key, false)
	if s.New != nil || values(s.Deleted) != "198.51.100.0/24" {
		t.Errorf("poll after expiry = %+v, want the range deleted", s)
	}
	s = h.stream(key, true)
	if values(s.New) != "192.0.2.7" {
		t.Errorf("startup after expiry: new %q, want 192.0.2.7", values(s.New))
	}
	// Created at +1s for 4h, now +2h1s: exactly 2h remain.
	if d := s.New[0].Duration; d != "2h0m0s" {
		t.Errorf("remaining duration %q, want 2h0m0s", d)
	}

	// GET /v1/decisions filters.
	for _, c := range []struct{ query, want string }{
		{"?ip=192.0.2.7", "192.0.2.7"},
		{"?ip=203.0.113.9", ""},   // revoked
		{"?ip=198.51.100.20", ""}, // expired
		{"?scope=ip&value=192.0.2.7", "192.0.2.7"},
		{"?type=captcha", ""},
		{"?range=192.0.2.7/32", "192.0.2.7"},
		{"", "192.0.2.7"},
	} {
		var got []csDecision
		if err := json.Unmarshal(h.pull(key, "/v1/decisions"+c.query, http.StatusOK), &got); err != nil {
			t.Fatal(err)
		}
		if values(got) != c.want {
			t.Errorf("GET /v1/decisions%s = %q, want %q", c.query, values(got), c.want)
		}
	}
	h.pull(key, "/v1/decisions?ip=not-an-ip", http.StatusBadRequest)

	var active, hist struct {
		Decisions []struct {
			Value  string `json:"value"`
			Status string `json:"status"`
		} `json:"decisions"`
	}
	h.do("GET", "/api/v1/decisions", "", http.StatusOK, &active)
	if len(active.Decisions) != 1 || active.Decisions[0].Value != "192.0.2.7" {
		t.Errorf("active decisions = %+v", active.Decisions)
	}
	h.do("GET", "/api/v1/decisions?history=true", "", http.StatusOK, &hist)
	if len(hist.Decisions) != 2 || hist.Decisions[0].Status != "expired" || hist.Decisions[1].Status != "revoked" {
		t.Errorf("history = %+v, want the range expired and the ip revoked", hist.Decisions)
	}

	// Every change is audited.
	for action, n := range map[string]int{"decision.create": 3, "decision.revoke": 1, "bouncer.create": 1} {
		var audit struct {
			Entries []json.RawMessage `json:"entries"`
		}
		h.do("GET", "/api/v1/audit?action="+action, "", http.StatusOK, &audit)
		if len(audit.Entries) != n {
			t.Errorf("audit %s: %d entries, want %d", action, len(audit.Entries), n)
		}
	}

	// Bad keys: missing, unknown, revoked and expired all get CrowdSec's 403.
	var other struct {
		APIKey  string `json:"api_key"`
		Bouncer struct {
			ID int64 `json:"id"`
		} `json:"bouncer"`
	}
	h.do("POST", "/api/v1/bouncers", `{"name":"nginx"}`, http.StatusCreated, &other)
	h.stream(other.APIKey, true)
	h.do("DELETE", fmt.Sprintf("/api/v1/bouncers/%d", other.Bouncer.ID), "", http.StatusNoContent, nil)
	for name, k := range map[string]string{"missing": "", "unknown": "nsc_not-a-real-key", "revoked": other.APIKey} {
		if got := strings.TrimSpace(string(h.pull(k, "/v1/decisions/stream?startup=true", http.StatusForbidden))); got != `{"message":"access forbidden"}` {
			t.Errorf("%s key: body %s", name, got)
		}
		h.pull(k, "/v1/decisions", http.StatusForbidden)
	}
	h.stream(key, false)
	clock.Advance(48 * time.Hour)
	h.pull(key, "/v1/decisions/stream", http.StatusForbidden)
}

func TestDecisionBadInput(t *testing.T) {
	h := start(t, "", "")
	h.do("POST", "/api/v1/decisions", `{"value":"203.0.113.50","duration":"1h"}`, http.StatusCreated, nil)
	for _, c := range []struct{ name, body, field, mention string }{
		{"loopback allow-listed", `{"value":"127.0.0.5"}`, "value", "127.0.0.5"},
		{"ipv6 loopback", `{"value":"::1"}`, "value", "::1"},
		{"range over allow-list", `{"scope":"range","value":"127.0.0.0/16"}`, "value", "allow-listed"},
		{"too wide ipv4", `{"scope":"range","value":"10.0.0.0/8"}`, "value", "/16"},
		{"too wide ipv6", `{"scope":"range","value":"2001:db8::/32"}`, "value", "/48"},
		{"host bits", `{"scope":"range","value":"203.0.113.9/24"}`, "value", "203.0.113.0/24"},
		{"cidr as ip", `{"scope":"ip","value":"203.0.113.0/24"}`, "value", "range"},
		{"not an ip", `{"value":"evil.example"}`, "value", "evil.example"},
		{"no value", `{"type":"ban"}`, "value", "required"},
		{"bad type", `{"type":"nuke","value":"203.0.113.9"}`, "type", "nuke"},
		{"bad scope", `{"scope":"country","value":"203.0.113.9"}`, "scope", "country"},
		{"bad duration", `{"value":"203.0.113.9","duration":"soon"}`, "duration", "soon"},
		{"never expires", `{"value":"203.0.113.9","duration":"0s"}`, "duration", "expires"},
		{"bad endpoints", `{"value":"203.0.113.9","endpoints":"some"}`, "endpoints", "all"},
		{"unknown endpoint", `{"value":"203.0.113.9","endpoints":["ep-missing"]}`, "endpoints[0]", "ep-missing"},
		{"unknown incident", `{"value":"203.0.113.9","incident_id":999}`, "incident_id", "999"},
		{"unknown field", `{"value":"203.0.113.9","ttl":"1h"}`, "ttl", "ttl"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e struct {
				Error string `json:"error"`
				Field string `json:"field"`
			}
			h.do("POST", "/api/v1/decisions", c.body, http.StatusBadRequest, &e)
			if e.Field != c.field || !strings.Contains(e.Error, c.mention) {
				t.Errorf("error %+v, want field %q mentioning %q", e, c.field, c.mention)
			}
		})
	}
	// Nothing was stored by the refused requests.
	var active struct {
		Decisions []json.RawMessage `json:"decisions"`
	}
	h.do("GET", "/api/v1/decisions", "", http.StatusOK, &active)
	if len(active.Decisions) != 1 {
		t.Errorf("%d active decisions after refused requests, want 1", len(active.Decisions))
	}

	// Roles: a viewer may look but not block; only an admin makes keys.
	h.do("POST", "/api/v1/users", `{"name":"vera","role":"viewer","password":"viewer-password-1"}`, http.StatusCreated, nil)
	h.do("POST", "/api/v1/users", `{"name":"otto","role":"operator","password":"operator-password-1"}`, http.StatusCreated, nil)
	cred := func(user string) string {
		var tok struct {
			Token string `json:"token"`
		}
		h.do("POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"%s-cli","user":"%s"}`, user, user), http.StatusCreated, &tok)
		return "bearer:" + tok.Token
	}
	viewer, operator := cred("vera"), cred("otto")
	h.doAs(viewer, "GET", "/api/v1/decisions", "", http.StatusOK, nil)
	h.doAs(viewer, "POST", "/api/v1/decisions", `{"value":"203.0.113.77"}`, http.StatusForbidden, nil)
	h.doAs(viewer, "DELETE", "/api/v1/decisions/1", "", http.StatusForbidden, nil)
	h.doAs(operator, "POST", "/api/v1/decisions", `{"value":"203.0.113.77"}`, http.StatusCreated, nil)
	h.doAs(operator, "POST", "/api/v1/bouncers", `{"name":"x"}`, http.StatusForbidden, nil)
	h.do("POST", "/api/v1/bouncers", `{"name":""}`, http.StatusBadRequest, nil)
}

// BenchmarkBouncerStreamStartup measures a bouncer's startup pull with
// 10,000 active decisions (target: under 200 ms).
func BenchmarkBouncerStreamStartup(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Options{DataDir: b.TempDir(), Listen: "127.0.0.1:0", AdminPassword: adminPassword, ConfigPoll: -1,
		Logger: slog.New(slog.DiscardHandler), Stderr: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	st := a.Store()
	now := time.Now().UTC()
	pol := decision.DefaultPolicy()
	for i := range 10_000 {
		d, err := pol.Validate(decision.Request{Value: fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256), Duration: "4h", Reason: "bench"}, "bench", now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.CreateDecision(ctx, store.Actor{Name: "bench"}, d); err != nil {
			b.Fatal(err)
		}
	}
	plain := "nsc_bench-key"
	if _, err := st.CreateBouncer(ctx, store.Actor{Name: "bench"}, store.Bouncer{Name: "bench", KeyHash: auth.HashToken(plain), KeyPrefix: plain[:8]}); err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", a.URL()+"/v1/decisions/stream?startup=true", nil)
	req.Header.Set("X-Api-Key", plain)
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var s csStream
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil || len(s.New) != 10_000 {
			b.Fatalf("startup reply: %d decisions, err %v", len(s.New), err)
		}
	}
}
