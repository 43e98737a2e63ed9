package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiver is a loopback HTTP endpoint that keeps the last request.
type receiver struct {
	*httptest.Server
	reqs chan captured
}

type captured struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status int, reply string) *receiver {
	t.Helper()
	r := &receiver{reqs: make(chan captured, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.reqs <- captured{req.Header.Clone(), b}
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) last(t *testing.T) captured {
	t.Helper()
	select {
	case c := <-r.reqs:
		return c
	default:
		t.Fatal("receiver got no request")
		return captured{}
	}
}

func fixedNow() time.Time { return time.Unix(1_900_000_000, 0) }

func TestSendWebhookSigned(t *testing.T) {
	rcv := newReceiver(t, http.StatusNoContent, "")
	s := NewSender(SenderOptions{Now: fixedNow})
	ch := Channel{Name: "hook", Type: TypeWebhook, URL: rcv.URL + "/hook", Secret: "s3cret"}
	status, err := s.Send(context.Background(), ch, sampleMessage())
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("Send = %d, %v", status, err)
	}
	got := rcv.last(t)
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ev := got.header.Get("X-Nocsoc-Event"); ev != "triggered" {
		t.Errorf("X-Nocsoc-Event = %q", ev)
	}
	ts := got.header.Get("X-Nocsoc-Timestamp")
	if ts != strconv.FormatInt(fixedNow().Unix(), 10) {
		t.Errorf("X-Nocsoc-Timestamp = %q", ts)
	}
	sig := got.header.Get("X-Nocsoc-Signature")
	if !VerifySignature("s3cret", ts, got.body, sig) {
		t.Errorf("signature %q does not verify", sig)
	}
	var p struct {
		Version string `json:"version"`
		Message
	}
	if err := json.Unmarshal(got.body, &p); err != nil {
		t.Fatal(err)
	}
	want := sampleMessage()
	if p.Version != "1" || p.IncidentID != 42 || p.Title != want.Title || p.URL != want.URL || p.Labels["host"] != "db1" || !p.Time.Equal(want.Time) {
		t.Errorf("payload = %s", got.body)
	}

	// Without a secret there is no signature header.
	ch.Secret = ""
	if _, err := s.Send(context.Background(), ch, sampleMessage()); err != nil {
		t.Fatal(err)
	}
	if sig := rcv.last(t).header.Get("X-Nocsoc-Signature"); sig != "" {
		t.Errorf("unsigned channel sent signature %q", sig)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"a":1}`)
	good := Sign("k", "100", body)
	tests := []struct {
		name, secret, ts string
		body             []byte
		header           string
		want             bool
	}{
		{"good", "k", "100", body, good, true},
		{"other secret", "k2", "100", body, good, false},
		{"other timestamp", "k", "101", body, good, false},
		{"tampered body", "k", "100", []byte(`{"a":2}`), good, false},
		{"no prefix", "k", "100", body, strings.TrimPrefix(good, "sha256="), false},
		{"not hex", "k", "100", body, "sha256=zz", false},
		{"empty header", "k", "100", body, "", false},
		{"empty secret", "", "100", body, Sign("", "100", body), false},
	}
	for _, tt := range tests {
		if got := VerifySignature(tt.secret, tt.ts, tt.body, tt.header); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSendHTTPErrors(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		status    int
		reply     string
		want      string
		permanent bool
	}{
		{http.StatusInternalServerError, "db locked", "webhook: HTTP 500 Internal Server Error: db locked", false},
		{http.StatusTooManyRequests, "", "webhook: HTTP 429 Too Many Requests", false},
		{http.StatusNotFound, "no_service", "webhook: HTTP 404 Not Found: no_service", true},
		{http.StatusBadGateway, long, "webhook: HTTP 502 Bad Gateway: " + long[:200], false},
	}
	for _, tt := range tests {
		rcv := newReceiver(t, tt.status, tt.reply)
		status, err := NewSender(SenderOptions{}).Send(context.Background(), Channel{Name: "h", Type: TypeWebhook, URL: rcv.URL}, sampleMessage())
		if status != tt.status || err == nil || err.Error() != tt.want {
			t.Errorf("%d: got %d, %v\nwant %q", tt.status, status, err, tt.want)
		}
		if IsPermanent(err) != tt.permanent {
			t.Errorf("%d: IsPermanent = %v", tt.status, IsPermanent(err))
		}
	}

	// Connection refused: the error names host and port but not the path,
	// which carries the token of Slack and Teams URLs.
	rcv := newReceiver(t, 200, "")
	url := rcv.URL
	rcv.Close()
	_, err := NewSender(SenderOptions{}).Send(context.Background(), Channel{Name: "s", Type: TypeSlack, URL: url + "/services/T000/SECRET"}, sampleMessage())
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "connection refused") || IsPermanent(err) {
		t.Errorf("refused: %v", err)
	}

	// An invalid channel is refused before anything is sent.
	_, err = NewSender(SenderOptions{}).Send(context.Background(), Channel{Name: "bad", Type: TypeWebhook, URL: "ftp://x"}, sampleMessage())
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "url:") {
		t.Errorf("invalid channel: %v", err)
	}
}

func TestSendRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := NewSender(SenderOptions{}).Send(context.Background(), Channel{Name: "h", Type: TypeWebhook, URL: srv.URL}, sampleMessage())
	var he *HTTPError
	if !errors.As(err, &he) || he.RetryAfter != 30*time.Second {
		t.Errorf("got %v", err)
	}
}

func TestSendSlack(t *testing.T) {
	rcv := newReceiver(t, http.StatusOK, "ok")
	m := sampleMessage()
	m.Title = "disk <full> & slow"
	if _, err := NewSender(SenderOptions{}).Send(context.Background(), Channel{Name: "s", Type: TypeSlack, URL: rcv.URL}, m); err != nil {
		t.Fatal(err)
	}
	got := rcv.last(t)
	if got.header.Get("X-Nocsoc-Signature") != "" || got.header.Get("X-Nocsoc-Event") != "" {
		t.Errorf("slack request carries webhook headers: %v", got.header)
	}
	var p struct {
		Text        string `json:"text"`
		Attachments []struct {
			Fallback, Color, Title, Text, Footer string
			TitleLink                            string `json:"title_link"`
			TS                                   int64  `json:"ts"`
			Fields                               []struct {
				Title, Value string
				Short        bool
			}
		}
	}
	if err := json.Unmarshal(got.body, &p); err != nil {
		t.Fatal(err)
	}
	wantText := "[nocsoc] [CRITICAL] #42 disk &lt;full&gt; &amp; slow (triggered) <https://nocsoc.example/incidents/42|open incident>"
	if p.Text != wantText {
		t.Errorf("text = %q\nwant %q", p.Text, wantText)
	}
	if len(p.Attachments) != 1 {
		t.Fatalf("attachments: %s", got.body)
	}
	a := p.Attachments[0]
	if a.Color != "#d00000" || a.TitleLink != m.URL || a.Title != "#42 disk &lt;full&gt; &amp; slow" || a.Text != m.Summary || a.TS != m.Time.Unix() {
		t.Errorf("attachment = %+v", a)
	}
	facts := map[string]string{}
	for _, f := range a.Fields {
		facts[f.Title] = f.Value
	}
	for k, v := range map[string]string{"Severity": "critical", "Status": "triggered", "Team": "noc", "Tier": "L1", "Notified": "alice"} {
		if facts[k] != v {
			t.Errorf("field %s = %q, want %q", k, facts[k], v)
		}
	}

	m.Event, m.Status = EventResolved, "resolved"
	if _, err := NewSender(SenderOptions{}).Send(context.Background(), Channel{Name: "s", Type: TypeSlack, URL: rcv.URL}, m); err != nil {
		t.Fatal(err)
	}
	if b := rcv.last(t).body; !strings.Contains(string(b), `"color":"#2eb886"`) {
		t.Errorf("resolved is not green: %s", b)
	}
}

func TestSendTeams(t *testing.T) {
	rcv := newReceiver(t, http.StatusAccepted, "")
	m := sampleMessage()
	status, err := NewSender(SenderOptions{}).Send(context.Background(), Channel{Name: "t", Type: TypeTeams, URL: rcv.URL}, m)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("Send = %d, %v", status, err)
	}
	var p struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string  `json:"contentType"`
			ContentURL  *string `json:"contentUrl"`
			Content     struct {
				Schema  string `json:"$schema"`
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type, Text, Color string
					Facts             []struct{ Title, Value string }
				}
				Actions []struct{ Type, Title, URL string }
			}
		}
	}
	body := rcv.last(t).body
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "message" || len(p.Attachments) != 1 || p.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("envelope: %s", body)
	}
	c := p.Attachments[0].Content
	if c.Type != "AdaptiveCard" || c.Version != "1.4" || !strings.Contains(c.Schema, "adaptive-card.json") {
		t.Errorf("card: %+v", c)
	}
	if len(c.Body) != 3 || c.Body[0].Text != "[nocsoc] [CRITICAL] #42 db is down (triggered)" || c.Body[0].Color != "Attention" || c.Body[1].Text != m.Summary || c.Body[2].Type != "FactSet" {
		t.Errorf("card body: %+v", c.Body)
	}
	if len(c.Actions) != 1 || c.Actions[0].Type != "Action.OpenUrl" || c.Actions[0].URL != m.URL || c.Actions[0].Title != "Open incident #42" {
		t.Errorf("card actions: %+v", c.Actions)
	}
}
