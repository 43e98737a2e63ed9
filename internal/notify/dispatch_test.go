package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// flakyReceiver answers failures with status fail, then 200. It verifies
// every signature and counts requests.
func flakyReceiver(t *testing.T, failures int, fail int) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var n, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			bad.Add(1)
		}
		if !VerifySignature("k", r.Header.Get("X-Nocsoc-Timestamp"), body, r.Header.Get("X-Nocsoc-Signature")) {
			bad.Add(1)
		}
		if n.Add(1) <= int64(failures) {
			http.Error(w, "try later", fail)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &bad
}

// runDispatcher starts d in the current (bubble) goroutine tree and returns
// a function that stops it and waits for Run to return.
func runDispatcher(d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			panic(err)
		}
	}
}

// bubbleSender is a real Sender whose connections do not outlive a
// request: an idle keep-alive connection has a goroutine blocked on the
// network, which would keep a synctest bubble's clock from advancing.
func bubbleSender() *Sender {
	return NewSender(SenderOptions{HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
}

func TestDispatchRetries(t *testing.T) {
	// The receiver lives outside the bubble: its accept loop waits on the
	// network, not on the bubble's clock.
	srv, requests, bad := flakyReceiver(t, 2, http.StatusServiceUnavailable)
	synctest.Test(t, func(t *testing.T) {
		log := &memLog{}
		results := make(chan Delivery, 10)
		d := NewDispatcher(DispatcherOptions{
			Sender:      bubbleSender(),
			Log:         log,
			BaseBackoff: time.Second,
			OnResult:    func(d Delivery, _ Message) { results <- d },
		})
		stop := runDispatcher(d)
		defer stop()
		if err := d.Enqueue(Channel{Name: "hook", Type: TypeWebhook, URL: srv.URL, Secret: "k"}, sampleMessage()); err != nil {
			t.Fatal(err)
		}
		var got []Delivery
		for len(got) < 3 {
			got = append(got, <-results)
		}
		if n := requests.Load(); n != 3 || bad.Load() != 0 {
			t.Errorf("receiver: %d requests, %d bad signatures", n, bad.Load())
		}
		wantStatus := []string{DeliveryFailed, DeliveryFailed, DeliverySent}
		wantHTTP := []int{503, 503, 200}
		for i, g := range got {
			if g.Attempt != i+1 || g.Status != wantStatus[i] || g.HTTPStatus != wantHTTP[i] || g.Channel != "hook" || g.IncidentID != 42 || g.Event != "triggered" {
				t.Errorf("attempt %d: %+v", i+1, g)
			}
		}
		if got[0].Error != "webhook: HTTP 503 Service Unavailable: try later" || got[2].Error != "" {
			t.Errorf("errors: %q, %q", got[0].Error, got[2].Error)
		}
		// Backoff doubles: 1s then 2s, each within ±20% jitter.
		checkIntervals(t, got, time.Second)
		if l := log.all(); len(l) != 3 || l[2].Status != DeliverySent {
			t.Errorf("delivery log: %+v", l)
		}
		st := d.Stats()
		if st.Sent != 1 || st.Failed != 2 || st.Dead != 0 || st.Retrying != 0 || st.Queued != 0 {
			t.Errorf("stats: %+v", st)
		}
	})
}

func checkIntervals(t *testing.T, got []Delivery, base time.Duration) {
	t.Helper()
	want := base
	for i := 1; i < len(got); i++ {
		iv := got[i].Time.Sub(got[i-1].Time)
		lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2)
		if iv < lo || iv > hi {
			t.Errorf("interval before attempt %d = %v, want %v..%v", i+1, iv, lo, hi)
		}
		want *= 2
	}
}

func TestDispatchDead(t *testing.T) {
	srv, requests, _ := flakyReceiver(t, 1000, http.StatusInternalServerError)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no_service", http.StatusNotFound) }))
	defer gone.Close()
	synctest.Test(t, func(t *testing.T) {
		log := &memLog{}
		results := make(chan Delivery, 10)
		d := NewDispatcher(DispatcherOptions{
			Sender:      bubbleSender(),
			Log:         log,
			MaxAttempts: 4,
			BaseBackoff: 10 * time.Second,
			OnResult:    func(d Delivery, _ Message) { results <- d },
		})
		stop := runDispatcher(d)
		defer stop()
		d.Enqueue(Channel{Name: "hook", Type: TypeWebhook, URL: srv.URL, Secret: "k"}, sampleMessage())
		var got []Delivery
		for len(got) < 4 {
			got = append(got, <-results)
		}
		for i, g := range got {
			want := DeliveryFailed
			if i == 3 {
				want = DeliveryDead
			}
			if g.Status != want || g.Attempt != i+1 || g.HTTPStatus != 500 || g.Error == "" {
				t.Errorf("attempt %d: %+v", i+1, g)
			}
		}
		checkIntervals(t, got, 10*time.Second)
		// Nothing else is tried, however long we wait.
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := requests.Load(); n != 4 || len(log.all()) != 4 {
			t.Errorf("%d requests, %d records after dead", n, len(log.all()))
		}

		// A 404 is permanent: dead at the first attempt.
		d.Enqueue(Channel{Name: "gone", Type: TypeSlack, URL: gone.URL}, sampleMessage())
		if g := <-results; g.Status != DeliveryDead || g.Attempt != 1 || g.HTTPStatus != 404 {
			t.Errorf("404: %+v", g)
		}
		if st := d.Stats(); st.Dead != 2 || st.Failed != 3 || st.Sent != 0 {
			t.Errorf("stats: %+v", st)
		}
	})
}

// blockingSender blocks every send until release is closed.
type blockingSender struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingSender) Send(ctx context.Context, _ Channel, _ Message) (int, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return 200, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func TestDispatchQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := &blockingSender{started: make(chan struct{}, 10), release: make(chan struct{})}
		d := NewDispatcher(DispatcherOptions{Sender: bs, Workers: 1, QueueSize: 2})
		stop := runDispatcher(d)
		ch := Channel{Name: "hook", Type: TypeWebhook, URL: "http://127.0.0.1:1/"}
		d.Enqueue(ch, sampleMessage())
		<-bs.started // the worker holds the first message
		for i := range 2 {
			if err := d.Enqueue(ch, sampleMessage()); err != nil {
				t.Fatalf("enqueue %d: %v", i, err)
			}
		}
		if err := d.Enqueue(ch, sampleMessage()); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("full queue: got %v", err)
		}
		if st := d.Stats(); st.Queued != 2 || st.InFlight != 1 || st.Dropped != 1 {
			t.Errorf("stats: %+v", st)
		}
		close(bs.release)
		synctest.Wait()
		if st := d.Stats(); st.Sent != 3 || st.Queued != 0 || st.InFlight != 0 {
			t.Errorf("after release: %+v", st)
		}
		stop()
	})
}

// TestDispatchShutdown: pending retries are abandoned when ctx ends and Run
// returns without waiting for their backoff.
func TestDispatchShutdown(t *testing.T) {
	srv, _, _ := flakyReceiver(t, 1000, http.StatusBadGateway)
	synctest.Test(t, func(t *testing.T) {
		results := make(chan Delivery, 10)
		d := NewDispatcher(DispatcherOptions{Sender: bubbleSender(), BaseBackoff: time.Minute, OnResult: func(d Delivery, _ Message) { results <- d }})
		stop := runDispatcher(d)
		d.Enqueue(Channel{Name: "hook", Type: TypeWebhook, URL: srv.URL}, sampleMessage())
		<-results
		start := time.Now()
		stop()
		synctest.Wait()
		if time.Since(start) != 0 {
			t.Errorf("Run waited %v for a retry", time.Since(start))
		}
		if st := d.Stats(); st.Retrying != 1 || st.Failed != 1 {
			t.Errorf("stats: %+v", st)
		}
	})
}

func TestBackoffCap(t *testing.T) {
	d := NewDispatcher(DispatcherOptions{Sender: bubbleSender(), BaseBackoff: time.Minute})
	for attempts := 1; attempts < 40; attempts++ {
		b := d.backoff(attempts)
		if b <= 0 || b > MaxBackoff {
			t.Errorf("backoff(%d) = %v", attempts, b)
		}
	}
	if b := d.backoff(30); b < MaxBackoff*8/10 {
		t.Errorf("backoff(30) = %v, want near the cap", b)
	}
}
