package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/intake"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/store"
)

// keyCache maps integration key hashes to integrations so that the intake
// path (thousands of requests a second) does not query the store for every
// delivery. Only known keys are cached; it is cleared whenever an
// integration is created or disabled.
type keyCache struct {
	mu sync.RWMutex
	m  map[string]alert.Integration
	// storeGen is the store's integrations generation the entries were
	// read under; a disable anywhere in the process bumps it.
	storeGen uint64
	// gen counts clears, so a lookup that raced with a disable does not
	// put the stale row back.
	gen uint64
}

func (c *keyCache) get(hash string) (it alert.Integration, ok bool, gen uint64) {
	c.mu.RLock()
	it, ok = c.m[hash]
	gen = c.gen
	c.mu.RUnlock()
	return it, ok, gen
}

func (c *keyCache) put(hash string, it alert.Integration, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil {
		c.m = map[string]alert.Integration{}
	}
	c.m[hash] = it
}

func (c *keyCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.storeGen
}

// reset drops every entry and records the store generation they now match.
func (c *keyCache) reset(storeGen uint64) {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.storeGen = storeGen
	c.mu.Unlock()
}

func (c *keyCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}

// errBadKey is the intake's answer to a missing, unknown or disabled key,
// or a key of another integration type; the reply does not say which, so
// keys cannot be probed.
var errBadKey = errors.New("unknown or disabled integration key")

// integrationFor resolves an integration key to an enabled integration of
// type typ.
func (s *server) integrationFor(r *http.Request, key, typ string) (alert.Integration, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return alert.Integration{}, errBadKey
	}
	hash := auth.HashToken(key)
	if g := s.st.IntegrationsGeneration(); g != s.keys.generation() {
		s.keys.reset(g)
	}
	it, ok, gen := s.keys.get(hash)
	if !ok {
		var err error
		it, err = s.st.IntegrationByKeyHash(r.Context(), hash)
		if errors.Is(err, store.ErrNotFound) {
			return alert.Integration{}, errBadKey
		}
		if err != nil {
			return alert.Integration{}, err
		}
		s.keys.put(hash, it, gen)
	}
	if it.Disabled || it.Type != typ {
		return alert.Integration{}, errBadKey
	}
	return it, nil
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return tok
}

// readBody reads a bounded request body into a pooled buffer; the caller
// returns it with s.bufs.Put once nothing refers to its bytes.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.bufs.Put(buf)
		return nil, err
	}
	return buf, nil
}

// intakeError writes a rejected delivery in nocsoc's error shape: 413 for
// an oversize body, 400 listing every problem, 500 otherwise.
func (s *server) intakeError(w http.ResponseWriter, r *http.Request, err error) {
	var ie *intake.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)})
	case errors.As(err, &ie):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": strings.Join(ie.Problems, "; "), "errors": ie.Problems})
	default:
		s.writeError(w, r, err)
	}
}

// intakeReply is the answer to an Alertmanager or webhook delivery, sent
// once every alert of it is committed.
type intakeReply struct {
	Status       string             `json:"status"`
	Integration  string             `json:"integration"`
	Alerts       int                `json:"alerts"`
	Deduplicated int                `json:"deduplicated"`
	Suppressed   int                `json:"suppressed"`
	Results      []response.Outcome `json:"results"`
}

// submitAlerts turns parsed alerts into fire and resolve operations and
// waits until they are committed.
func (s *server) submitAlerts(r *http.Request, it alert.Integration, as []alert.Alert) (intakeReply, error) {
	ops := make([]response.Op, len(as))
	source := it.Type + ":" + it.Name
	for i := range as {
		a := as[i]
		a.Integration, a.Source = it.Name, source
		if a.Status == alert.StatusResolved {
			ops[i] = response.Op{Kind: response.OpResolve, Fingerprint: a.Fingerprint}
			if a.ResolvedAt != nil {
				ops[i].At = *a.ResolvedAt
			}
			continue
		}
		ops[i] = response.Op{Kind: response.OpFire, Alert: a}
	}
	outs, err := s.resp.Submit(r.Context(), ops...)
	if err != nil {
		return intakeReply{}, err
	}
	rep := intakeReply{Status: "success", Integration: it.Name, Alerts: len(outs), Results: outs}
	for _, o := range outs {
		if o.Deduplicated {
			rep.Deduplicated++
		}
		if o.SuppressedBy != "" {
			rep.Suppressed++
		}
	}
	return rep, nil
}

// intakeAlertmanager receives Alertmanager's webhook (version 4); the
// integration key comes as a bearer token (http_config.authorization).
func (s *server) intakeAlertmanager(w http.ResponseWriter, r *http.Request) {
	s.intakeList(w, r, alert.IntegrationAlertmanager, intake.ParseAlertmanager)
}

// intakeWebhook receives nocsoc's generic JSON webhook.
func (s *server) intakeWebhook(w http.ResponseWriter, r *http.Request) {
	s.intakeList(w, r, alert.IntegrationWebhook, intake.ParseWebhook)
}

func (s *server) intakeList(w http.ResponseWriter, r *http.Request, typ string, parse func([]byte, time.Time) ([]alert.Alert, error)) {
	it, err := s.integrationFor(r, bearer(r), typ)
	if err != nil {
		if errors.Is(err, errBadKey) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nocsoc-intake"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: err.Error() + " (send Authorization: Bearer <integration key> of a " + typ + " integration)"})
			return
		}
		s.writeError(w, r, err)
		return
	}
	buf, err := s.readBody(w, r)
	if err != nil {
		s.intakeError(w, r, err)
		return
	}
	as, err := parse(buf.Bytes(), s.now())
	s.bufs.Put(buf) // the parsers copy what they keep
	if err != nil {
		s.intakeError(w, r, err)
		return
	}
	rep, err := s.submitAlerts(r, it, as)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// intakeEvents is the PagerDuty Events API v2 compatible endpoint: the
// routing_key in the body is the integration key, and replies use
// PagerDuty's shapes (202 on success, 400 "invalid event" otherwise,
// including for an unknown key, as PagerDuty does).
func (s *server) intakeEvents(w http.ResponseWriter, r *http.Request) {
	buf, err := s.readBody(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, intake.EventsInvalid(fmt.Errorf("request body is larger than %d bytes", mbe.Limit)))
			return
		}
		writeJSON(w, http.StatusBadRequest, intake.EventsInvalid(err))
		return
	}
	ev, err := intake.ParseEvents(buf.Bytes(), s.now())
	s.bufs.Put(buf)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, intake.EventsInvalid(err))
		return
	}
	it, err := s.integrationFor(r, ev.RoutingKey, alert.IntegrationEvents)
	if errors.Is(err, errBadKey) {
		writeJSON(w, http.StatusBadRequest, intake.EventsInvalid(errors.New("routing_key: "+errBadKey.Error())))
		return
	}
	if err != nil {
		s.log.Error("events intake", "err", err)
		writeJSON(w, http.StatusInternalServerError, intake.EventsResponse{Status: "error", Message: "internal error"})
		return
	}
	var op response.Op
	switch ev.Action {
	case intake.ActionTrigger:
		a := ev.Alert
		a.Integration, a.Source = it.Name, it.Type+":"+it.Name
		op = response.Op{Kind: response.OpFire, Alert: a}
	case intake.ActionAcknowledge:
		op = response.Op{Kind: response.OpAck, Fingerprint: ev.Alert.Fingerprint, Actor: "integration:" + it.Name}
	default:
		op = response.Op{Kind: response.OpResolve, Fingerprint: ev.Alert.Fingerprint}
	}
	if _, err := s.resp.Submit(r.Context(), op); err != nil {
		s.log.Error("events intake", "err", err)
		writeJSON(w, http.StatusInternalServerError, intake.EventsResponse{Status: "error", Message: "internal error: the event was not stored; retry"})
		return
	}
	writeJSON(w, http.StatusAccepted, intake.EventsOK(ev.DedupKey))
}

// Integrations (admin).

type integrationJSON struct {
	alert.Integration
	// Key is shown once, in the reply to the creation.
	Key     string `json:"key,omitempty"`
	URL     string `json:"url"`
	Note    string `json:"note,omitempty"`
	Enabled bool   `json:"enabled"`
}

func (s *server) integrationView(it alert.Integration) integrationJSON {
	return integrationJSON{Integration: it, URL: s.publicURL + "/api/v1/integrations/" + it.Type, Enabled: !it.Disabled}
}

func (s *server) listIntegrations(w http.ResponseWriter, r *http.Request, p principal) error {
	its, err := s.st.ListIntegrations(r.Context())
	if err != nil {
		return err
	}
	out := make([]integrationJSON, 0, len(its))
	for _, it := range its {
		out = append(out, s.integrationView(it))
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": out})
	return nil
}

func (s *server) createIntegration(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	switch req.Type {
	case alert.IntegrationEvents, alert.IntegrationAlertmanager, alert.IntegrationWebhook:
	case "":
		return badRequest("type", "type is required (events, alertmanager or webhook)")
	default:
		return badRequest("type", "unknown integration type %q (events, alertmanager or webhook)", req.Type)
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 128 {
		return badRequest("name", "name is required (1-128 characters)")
	}
	plain, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	it, err := s.st.CreateIntegration(r.Context(), p.actor(), alert.Integration{Name: req.Name, Type: req.Type, KeyHash: hash, KeyPrefix: plain[:8], CreatedAt: s.now().UTC()})
	if err != nil {
		return err
	}
	s.keys.clear()
	out := s.integrationView(it)
	out.Key = plain
	out.Note = "store this key now: it is shown only once"
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *server) disableIntegration(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	if err := s.st.DisableIntegration(r.Context(), p.actor(), id); err != nil {
		return err
	}
	s.keys.clear()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
