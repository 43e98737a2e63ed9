package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/noc"
)

type resultJSON struct {
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`
	State      string    `json:"state,omitempty"`
	RootCause  string    `json:"root_cause,omitempty"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	StatusCode int       `json:"status_code,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

type statusJSON struct {
	State                check.State `json:"state"`
	RootCause            string      `json:"root_cause,omitempty"`
	Since                *time.Time  `json:"since,omitempty"`
	Maintenance          string      `json:"maintenance,omitempty"`
	Underlying           check.State `json:"underlying,omitempty"`
	ConsecutiveFailures  int         `json:"consecutive_failures"`
	ConsecutiveSuccesses int         `json:"consecutive_successes"`
	Alerting             bool        `json:"alerting"`
	LastResult           *resultJSON `json:"last_result,omitempty"`
}

type checkJSON struct {
	check.Spec
	Status statusJSON `json:"status"`
	// PushURL is shown once, when a push check is created.
	PushURL string `json:"push_url,omitempty"`
}

func viewJSON(v noc.CheckView) checkJSON {
	st := v.Status
	out := checkJSON{Spec: v.Spec, Status: statusJSON{
		State: st.State, RootCause: st.RootCause, Maintenance: st.Maintenance, Underlying: st.Underlying,
		ConsecutiveFailures: st.ConsecutiveFailures, ConsecutiveSuccesses: st.ConsecutiveSuccesses, Alerting: st.Alerting,
	}}
	if out.Status.State == "" {
		out.Status.State = check.StateUnknown
	}
	if !st.Since.IsZero() {
		t := st.Since.UTC()
		out.Status.Since = &t
	}
	if lr := st.LastResult; lr != nil {
		out.Status.LastResult = &resultJSON{Time: lr.Time.UTC(), OK: lr.OK, DurationMS: ms(lr.Duration), Error: lr.Error, StatusCode: lr.StatusCode, Detail: lr.Detail}
	}
	return out
}

func validState(v string) bool {
	for _, st := range check.States {
		if string(st) == v {
			return true
		}
	}
	return false
}

func validType(v string) bool {
	for _, t := range check.Types {
		if t == v {
			return true
		}
	}
	return false
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *server) listChecks(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	if st := q.Get("state"); st != "" && !validState(st) {
		return badRequest("state", "unknown state %q (one of up, down, unreachable, flapping, maintenance, unknown)", st)
	}
	if t := q.Get("type"); t != "" && !validType(t) {
		return badRequest("type", "unknown check type %q (one of %s)", t, strings.Join(check.Types, ", "))
	}
	views := s.noc.Checks()
	out := make([]checkJSON, 0, len(views))
	for _, v := range views {
		if st := q.Get("state"); st != "" && string(v.Status.State) != st {
			continue
		}
		if t := q.Get("type"); t != "" && v.Spec.Type != t {
			continue
		}
		out = append(out, viewJSON(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"checks": out, "count": len(out)})
	return nil
}

func (s *server) getCheck(w http.ResponseWriter, r *http.Request, p principal) error {
	v, err := s.noc.Check(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewJSON(v))
	return nil
}

func (s *server) createCheck(w http.ResponseWriter, r *http.Request, p principal) error {
	var spec check.Spec
	if err := decodeJSON(w, r, &spec); err != nil {
		return err
	}
	v, pushToken, err := s.noc.CreateCheck(r.Context(), p.actor(), spec)
	if err != nil {
		return err
	}
	out := viewJSON(v)
	if pushToken != "" {
		out.PushURL = s.publicURL + "/api/v1/push/" + pushToken
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *server) updateCheck(w http.ResponseWriter, r *http.Request, p principal) error {
	var spec check.Spec
	if err := decodeJSON(w, r, &spec); err != nil {
		return err
	}
	name := r.PathValue("name")
	if spec.Name == "" {
		spec.Name = name
	}
	if spec.Name != name {
		return badRequest("name", "name %q does not match the URL's %q (renaming is not supported: create a new check)", spec.Name, name)
	}
	v, err := s.noc.UpdateCheck(r.Context(), p.actor(), spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewJSON(v))
	return nil
}

func (s *server) deleteCheck(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := s.noc.DeleteCheck(r.Context(), p.actor(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) runCheck(w http.ResponseWriter, r *http.Request, p principal) error {
	name := r.PathValue("name")
	if err := s.noc.RunNow(name); err != nil {
		return err
	}
	if err := s.st.AppendAudit(r.Context(), p.actor(), "check.run", "check:"+name, nil, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued", "check": name})
	return nil
}

// timeRange parses from/to (RFC 3339 or unix seconds); defaults to the last
// `def` up to now.
func (s *server) timeRange(r *http.Request, def time.Duration) (time.Time, time.Time, error) {
	q := r.URL.Query()
	to := s.now()
	from := to.Add(-def)
	var err error
	if v := q.Get("to"); v != "" {
		if to, err = s.parseTime(v); err != nil {
			return from, to, badRequest("to", "to: %v", err)
		}
		if q.Get("from") == "" {
			from = to.Add(-def)
		}
	}
	if v := q.Get("from"); v != "" {
		if from, err = s.parseTime(v); err != nil {
			return from, to, badRequest("from", "from: %v", err)
		}
	}
	if !from.Before(to) {
		return from, to, badRequest("from", "from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

func (s *server) parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return s.now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, unix seconds or a duration like 24h", v)
}

func intParam(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badRequest(name, "%s must be a positive integer, got %q", name, v)
	}
	if n > max {
		n = max
	}
	return n, nil
}

func (s *server) checkResults(w http.ResponseWriter, r *http.Request, p principal) error {
	name := r.PathValue("name")
	if _, err := s.noc.Check(name); err != nil {
		return err
	}
	from, to, err := s.timeRange(r, 24*time.Hour)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 10000)
	if err != nil {
		return err
	}
	f := eventstore.ResultFilter{Check: name, From: from, To: to, Limit: limit, OnlyFailures: r.URL.Query().Get("failures") == "true"}
	if v := r.URL.Query().Get("before"); v != "" {
		if f.Before, err = s.parseTime(v); err != nil {
			return badRequest("before", "before: %v", err)
		}
	}
	// Results are written in batches; flush so the reply includes every
	// result taken so far.
	if err := s.events.Flush(r.Context()); err != nil {
		return err
	}
	rows, err := s.events.Results(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]resultJSON, 0, len(rows))
	for _, row := range rows {
		out = append(out, resultJSON{Time: row.Time.UTC(), OK: row.OK, State: string(row.State), RootCause: row.RootCause,
			DurationMS: ms(row.Duration), Error: row.Error, StatusCode: row.StatusCode, Detail: row.Detail})
	}
	resp := map[string]any{"check": name, "results": out}
	if len(out) == limit {
		resp["next_before"] = out[len(out)-1].Time.Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *server) checkUptime(w http.ResponseWriter, r *http.Request, p principal) error {
	name := r.PathValue("name")
	if _, err := s.noc.Check(name); err != nil {
		return err
	}
	from, to, err := s.timeRange(r, 24*time.Hour)
	if err != nil {
		return err
	}
	if err := s.events.Flush(r.Context()); err != nil {
		return err
	}
	u, err := s.events.Uptime(r.Context(), name, from, to)
	if err != nil {
		return err
	}
	out := map[string]any{
		"check": name, "from": u.From.UTC(), "to": u.To.UTC(),
		"up_seconds": u.Up.Seconds(), "down_seconds": u.Down.Seconds(),
		"maintenance_seconds": u.Maintenance.Seconds(), "unknown_seconds": u.Unknown.Seconds(),
		"results": u.Results, "failures": u.Failures,
		"latency_ms": map[string]float64{"p50": ms(u.LatencyP50), "p95": ms(u.LatencyP95), "p99": ms(u.LatencyP99)},
	}
	if u.Ratio != nil {
		out["uptime_ratio"] = *u.Ratio
		out["uptime_percent"] = *u.Ratio * 100
	} else {
		out["uptime_ratio"] = nil
		out["uptime_percent"] = nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) checkChanges(w http.ResponseWriter, r *http.Request, p principal) error {
	name := r.PathValue("name")
	if _, err := s.noc.Check(name); err != nil {
		return err
	}
	from, to, err := s.timeRange(r, 7*24*time.Hour)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 10000)
	if err != nil {
		return err
	}
	if err := s.events.Flush(r.Context()); err != nil {
		return err
	}
	chs, err := s.events.StateChanges(r.Context(), name, from, to, limit)
	if err != nil {
		return err
	}
	type changeJSON struct {
		Time time.Time   `json:"time"`
		From check.State `json:"from"`
		To   check.State `json:"to"`
	}
	out := make([]changeJSON, 0, len(chs))
	for _, c := range chs {
		out = append(out, changeJSON{Time: c.Time.UTC(), From: c.From, To: c.To})
	}
	writeJSON(w, http.StatusOK, map[string]any{"check": name, "changes": out})
	return nil
}
