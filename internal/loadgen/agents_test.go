package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// fakeFleet speaks the enrollment API and the agent protocol and checks
// what it is sent.
type fakeFleet struct {
	mu       sync.Mutex
	tokens   map[string]bool
	creds    map[string]string // credential → agent id
	hb       map[string]int
	batches  map[string][]uint64
	bad      []string
	samples  int
	adminTok string
	made     int
}

func (f *fakeFleet) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/enrollment-tokens", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.adminTok {
			http.Error(w, `{"error":"unauthorized"}`, 401)
			return
		}
		f.mu.Lock()
		f.made++
		tok := fmt.Sprintf("nse_%d", f.made)
		f.tokens[tok] = true
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})
	mux.HandleFunc("POST "+agentproto.PathEnroll, func(w http.ResponseWriter, r *http.Request) {
		var req agentproto.EnrollRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.tokens[req.Token] {
			http.Error(w, `{"error":"refused"}`, 401)
			return
		}
		delete(f.tokens, req.Token)
		id := uuid4()
		f.creds["nsa_"+id] = id
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(agentproto.EnrollResponse{AgentID: id, Credential: "nsa_" + id})
	})
	agent := func(r *http.Request) (string, bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		id, ok := f.creds[r.Header.Get("Authorization")[len("Bearer "):]]
		return id, ok
	}
	mux.HandleFunc("POST "+agentproto.PathHeartbeat, func(w http.ResponseWriter, r *http.Request) {
		id, ok := agent(r)
		var hb agentproto.Heartbeat
		_ = json.NewDecoder(r.Body).Decode(&hb)
		f.mu.Lock()
		defer f.mu.Unlock()
		if !ok || hb.AgentID != id {
			f.bad = append(f.bad, "heartbeat of "+hb.AgentID)
			http.Error(w, `{"error":"forbidden"}`, 403)
			return
		}
		f.hb[id]++
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("POST "+agentproto.PathBatches, func(w http.ResponseWriter, r *http.Request) {
		id, ok := agent(r)
		var b agentproto.Batch
		_ = json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		if !ok || b.AgentID != id || len(b.BatchID) != 36 {
			f.bad = append(f.bad, "batch of "+b.AgentID)
			http.Error(w, `{"error":"bad"}`, 400)
			return
		}
		f.batches[id] = append(f.batches[id], b.Seq)
		f.samples += len(b.Metrics)
		_, _ = w.Write([]byte(`{"status":"applied"}`))
	})
	return mux
}

func TestRunAgents(t *testing.T) {
	f := &fakeFleet{tokens: map[string]bool{}, creds: map[string]string{}, hb: map[string]int{}, batches: map[string][]uint64{}, adminTok: "nst_admin"}
	srv := httptest.NewServer(f.handler())
	defer srv.Close()
	res, err := RunAgents(context.Background(), AgentOptions{Server: srv.URL, Count: 20, Interval: 100 * time.Millisecond,
		Duration: time.Second, Token: "nst_admin", Connections: 4})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if res.Enrolled != 20 || len(f.creds) != 20 || len(f.bad) > 0 {
		t.Fatalf("enrolled %d, server knows %d, bad requests %v", res.Enrolled, len(f.creds), f.bad)
	}
	// Every agent ticked, with sequence numbers from 1.
	for id, seqs := range f.batches {
		// The run may end between a heartbeat and its batch.
		if len(seqs) < 1 || f.hb[id]-len(seqs) > 1 || f.hb[id] < len(seqs) {
			t.Errorf("agent %s: %d heartbeats, batches %v", id, f.hb[id], seqs)
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Errorf("agent %s: seqs %v", id, seqs)
				break
			}
		}
	}
	// Requests cut by the end of the run may have reached the server.
	served := int64(sumLen(f.batches))
	if len(f.batches) != 20 || res.Errors != 0 || res.Batches > served || served > res.Batches+20 || res.Batches < 20 || f.samples/int(served) < 35 {
		t.Errorf("result %s; server saw %d agents' batches, %d samples", res, len(f.batches), f.samples)
	}

	// Refusals are clear flag errors.
	_, err = RunAgents(context.Background(), AgentOptions{Server: srv.URL, Count: 2, Interval: time.Second, EnrollToken: "nse_x"})
	var fe *FlagError
	if !errors.As(err, &fe) || fe.Flag != "enroll-token" {
		t.Errorf("two agents with one enrollment token: %v", err)
	}
	if _, err := RunAgents(context.Background(), AgentOptions{Server: srv.URL, Count: 1, Interval: time.Second, Token: "wrong"}); err == nil {
		t.Error("wrong admin token: no error")
	}
}

func sumLen(m map[string][]uint64) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
