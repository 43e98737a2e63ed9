package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/oncall"
	"github.com/nocsoc/nocsoc/internal/opmetrics"
	"github.com/nocsoc/nocsoc/internal/runbook"
	"github.com/nocsoc/nocsoc/internal/store"
)

// errProvisioned answers changes to items that come from the config file.
func errProvisioned(kind, name string) error {
	return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("%s %q is provisioned from the configuration file and cannot be changed through the API", kind, name)}
}

// refParam reads {id}: a numeric id of a stored item, or a name (which
// also reaches provisioned items, which have no id).
func refParam(r *http.Request) (id int64, name string) {
	v := r.PathValue("id")
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return n, ""
	}
	return 0, v
}

// reload refreshes the incident service's view of API-managed items.
func (s *server) reload(ctx context.Context) error {
	if err := s.resp.ReloadDynamic(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("reload alerting objects: %w", err)
	}
	return nil
}

// Silences.

func (s *server) listSilences(w http.ResponseWriter, r *http.Request, p principal) error {
	ss, err := s.st.ListSilences(r.Context(), r.URL.Query().Get("expired") == "true")
	if err != nil {
		return err
	}
	if ss == nil {
		ss = []alert.Silence{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": ss})
	return nil
}

func (s *server) createSilence(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Matchers []string       `json:"matchers"`
		StartsAt *time.Time     `json:"starts_at"`
		EndsAt   *time.Time     `json:"ends_at"`
		Duration check.Duration `json:"duration"`
		Comment  string         `json:"comment"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	now := s.now().UTC()
	sl := alert.Silence{Matchers: req.Matchers, StartsAt: now, CreatedBy: p.actor().Name, Comment: req.Comment, CreatedAt: now}
	if req.StartsAt != nil {
		sl.StartsAt = req.StartsAt.UTC()
	}
	switch {
	case req.EndsAt != nil && req.Duration != 0:
		return badRequest("duration", "give ends_at or duration, not both")
	case req.EndsAt != nil:
		sl.EndsAt = req.EndsAt.UTC()
	case req.Duration > 0:
		sl.EndsAt = sl.StartsAt.Add(req.Duration.D())
	case req.Duration < 0:
		return badRequest("duration", "duration must be positive")
	default:
		return badRequest("ends_at", "ends_at or duration is required")
	}
	if strings.TrimSpace(sl.Comment) == "" {
		return badRequest("comment", "comment is required: say why the alerts are silenced")
	}
	if err := sl.Validate(); err != nil {
		return err
	}
	sl, err := s.st.CreateSilence(r.Context(), p.actor(), sl)
	if err != nil {
		return err
	}
	if err := s.resp.ReloadSilences(context.WithoutCancel(r.Context())); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sl)
	return nil
}

func (s *server) expireSilence(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	sl, err := s.st.ExpireSilence(r.Context(), p.actor(), id, s.now().UTC())
	if err != nil {
		return err
	}
	if err := s.resp.ReloadSilences(context.WithoutCancel(r.Context())); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sl)
	return nil
}

// Escalation policies.

func (s *server) findPolicy(ctx context.Context, r *http.Request) (oncall.Policy, error) {
	id, name := refParam(r)
	if id != 0 {
		return s.st.GetPolicy(ctx, id)
	}
	pols, err := s.resp.Policies(ctx)
	if err != nil {
		return oncall.Policy{}, err
	}
	for _, p := range pols {
		if p.Name == name {
			return p, nil
		}
	}
	return oncall.Policy{}, fmt.Errorf("escalation policy %q: %w", name, store.ErrNotFound)
}

func (s *server) listPolicies(w http.ResponseWriter, r *http.Request, p principal) error {
	pols, err := s.resp.Policies(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": pols})
	return nil
}

func (s *server) getPolicy(w http.ResponseWriter, r *http.Request, p principal) error {
	pol, err := s.findPolicy(r.Context(), r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pol)
	return nil
}

// validatePolicy checks pol against the users, schedules, channels and
// policies that exist now.
func (s *server) validatePolicy(ctx context.Context, pol *oncall.Policy) error {
	pols, err := s.resp.Policies(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]*oncall.Policy, len(pols))
	for i := range pols {
		byName[pols[i].Name] = &pols[i]
	}
	users := func(n string) bool { _, err := s.st.UserByName(ctx, n); return err == nil }
	schedules := func(n string) bool { return s.resp.HasSchedule(ctx, n) }
	channels := func(n string) bool { return s.resp.HasChannel(ctx, n) }
	return pol.Validate(users, schedules, channels, byName)
}

func (s *server) createPolicy(w http.ResponseWriter, r *http.Request, p principal) error {
	var pol oncall.Policy
	if err := decodeJSON(w, r, &pol); err != nil {
		return err
	}
	if pol.ID != 0 || pol.Provisioned {
		return badRequest("id", "id and provisioned are set by the server")
	}
	if err := s.validatePolicy(r.Context(), &pol); err != nil {
		return err
	}
	if s.resp.HasPolicy(r.Context(), pol.Name) {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("escalation policy %q already exists", pol.Name), Field: "name"}
	}
	pol, err := s.st.CreatePolicy(r.Context(), p.actor(), pol)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, pol)
	return nil
}

func (s *server) updatePolicy(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findPolicy(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("escalation policy", cur.Name)
	}
	var pol oncall.Policy
	if err := decodeJSON(w, r, &pol); err != nil {
		return err
	}
	if pol.ID != 0 && pol.ID != cur.ID {
		return badRequest("id", "id %d does not match the URL's %d", pol.ID, cur.ID)
	}
	if pol.Provisioned {
		return badRequest("provisioned", "provisioned is set by the server")
	}
	pol.ID = cur.ID
	if pol.Name == "" {
		pol.Name = cur.Name
	}
	if err := s.validatePolicy(r.Context(), &pol); err != nil {
		return err
	}
	if pol.Name != cur.Name && s.resp.HasPolicy(r.Context(), pol.Name) {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("escalation policy %q already exists", pol.Name), Field: "name"}
	}
	pol, err = s.st.UpdatePolicy(r.Context(), p.actor(), pol)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pol)
	return nil
}

// usedBy names the policy whose tiers target (typ, name), or "".
func (s *server) usedBy(ctx context.Context, typ, name string) (string, error) {
	pols, err := s.resp.Policies(ctx)
	if err != nil {
		return "", err
	}
	for _, pol := range pols {
		for _, t := range pol.Tiers {
			for _, tg := range t.Targets {
				if tg.Type == typ && tg.Name == name {
					return pol.Name, nil
				}
			}
		}
	}
	return "", nil
}

func (s *server) deletePolicy(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findPolicy(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("escalation policy", cur.Name)
	}
	if by, err := s.usedBy(r.Context(), oncall.TargetPolicy, cur.Name); err != nil {
		return err
	} else if by != "" {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("escalation policy %q is a target of policy %q; change that first", cur.Name, by)}
	}
	if err := s.st.DeletePolicy(r.Context(), p.actor(), cur.ID); err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Schedules.

func (s *server) findSchedule(ctx context.Context, r *http.Request) (oncall.Schedule, error) {
	id, name := refParam(r)
	if id != 0 {
		return s.st.GetSchedule(ctx, id)
	}
	for _, sc := range s.resp.Schedules(ctx) {
		if sc.Name == name {
			return sc, nil
		}
	}
	return oncall.Schedule{}, fmt.Errorf("schedule %q: %w", name, store.ErrNotFound)
}

func (s *server) listSchedules(w http.ResponseWriter, r *http.Request, p principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"schedules": s.resp.Schedules(r.Context())})
	return nil
}

func (s *server) getSchedule(w http.ResponseWriter, r *http.Request, p principal) error {
	sc, err := s.findSchedule(r.Context(), r)
	if err != nil {
		return err
	}
	now := s.now()
	who, until := sc.OnCall(now)
	writeJSON(w, http.StatusOK, map[string]any{"schedule": sc, "on_call": who, "until": until,
		"shifts": sc.Shifts(now, now.Add(14*24*time.Hour))})
	return nil
}

func (s *server) validateSchedule(ctx context.Context, sc *oncall.Schedule) error {
	if err := sc.Validate(); err != nil {
		return err
	}
	for i, u := range sc.Users {
		if _, err := s.st.UserByName(ctx, u); err != nil {
			return badRequest(fmt.Sprintf("users[%d]", i), "users[%d]: user %q does not exist", i, u)
		}
	}
	for i, o := range sc.Overrides {
		if _, err := s.st.UserByName(ctx, o.User); err != nil {
			return badRequest(fmt.Sprintf("overrides[%d].user", i), "overrides[%d].user: user %q does not exist", i, o.User)
		}
	}
	return nil
}

func (s *server) createSchedule(w http.ResponseWriter, r *http.Request, p principal) error {
	var sc oncall.Schedule
	if err := decodeJSON(w, r, &sc); err != nil {
		return err
	}
	if sc.ID != 0 || sc.Provisioned {
		return badRequest("id", "id and provisioned are set by the server")
	}
	if err := s.validateSchedule(r.Context(), &sc); err != nil {
		return err
	}
	if s.resp.HasSchedule(r.Context(), sc.Name) {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("schedule %q already exists", sc.Name), Field: "name"}
	}
	sc, err := s.st.CreateSchedule(r.Context(), p.actor(), sc)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sc)
	return nil
}

func (s *server) updateSchedule(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findSchedule(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("schedule", cur.Name)
	}
	var sc oncall.Schedule
	if err := decodeJSON(w, r, &sc); err != nil {
		return err
	}
	if sc.ID != 0 && sc.ID != cur.ID {
		return badRequest("id", "id %d does not match the URL's %d", sc.ID, cur.ID)
	}
	if sc.Provisioned {
		return badRequest("provisioned", "provisioned is set by the server")
	}
	sc.ID = cur.ID
	if sc.Name == "" {
		sc.Name = cur.Name
	}
	if err := s.validateSchedule(r.Context(), &sc); err != nil {
		return err
	}
	if sc.Name != cur.Name && s.resp.HasSchedule(r.Context(), sc.Name) {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("schedule %q already exists", sc.Name), Field: "name"}
	}
	sc, err = s.st.UpdateSchedule(r.Context(), p.actor(), sc)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

func (s *server) deleteSchedule(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findSchedule(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("schedule", cur.Name)
	}
	if by, err := s.usedBy(r.Context(), oncall.TargetSchedule, cur.Name); err != nil {
		return err
	} else if by != "" {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("schedule %q is a target of escalation policy %q; change that first", cur.Name, by)}
	}
	if err := s.st.DeleteSchedule(r.Context(), p.actor(), cur.ID); err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) whoIsOnCall(w http.ResponseWriter, r *http.Request, p principal) error {
	at := s.now()
	if v := r.URL.Query().Get("at"); v != "" {
		t, err := s.parseTime(v)
		if err != nil {
			return badRequest("at", "at: %v", err)
		}
		at = t
	}
	team := r.URL.Query().Get("team")
	if err := validTeam("team", team); err != nil {
		return err
	}
	entries := oncall.WhoIsOnCall(s.resp.Schedules(r.Context()), at)
	out := entries[:0]
	for _, e := range entries {
		if team == "" || e.Team == team {
			out = append(out, e)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"at": at.UTC(), "oncall": out})
	return nil
}

// Channels. Secrets are accepted on input and never returned.

type channelRequest struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Secret string `json:"secret"`
	Email  *struct {
		To        []string `json:"to"`
		From      string   `json:"from"`
		Host      string   `json:"host"`
		Port      int      `json:"port"`
		Username  string   `json:"username"`
		Password  string   `json:"password"`
		StartTLS  *bool    `json:"starttls"`
		TLSVerify *bool    `json:"tls_verify"`
	} `json:"email"`
}

func (c channelRequest) channel() notify.Channel {
	ch := notify.Channel{Name: c.Name, Type: c.Type, URL: c.URL, Secret: c.Secret}
	if e := c.Email; e != nil {
		ch.Email = &notify.EmailSettings{To: e.To, From: e.From, Host: e.Host, Port: e.Port, Username: e.Username,
			Password: e.Password, StartTLS: e.StartTLS, TLSVerify: e.TLSVerify}
	}
	return ch
}

// channelJSON is a channel as the API shows it: Channel tags its secrets
// json:"-", and SecretSet says whether one is stored.
type channelJSON struct {
	notify.Channel
	SecretSet bool `json:"secret_set"`
}

func channelView(ch notify.Channel) channelJSON {
	return channelJSON{Channel: ch, SecretSet: ch.Secret != "" || (ch.Email != nil && ch.Email.Password != "")}
}

func (s *server) findChannel(ctx context.Context, r *http.Request) (notify.Channel, error) {
	id, name := refParam(r)
	if id != 0 {
		return s.st.GetChannel(ctx, id)
	}
	ch, ok := s.resp.ChannelByName(ctx, name)
	if !ok {
		return notify.Channel{}, fmt.Errorf("channel %q: %w", name, store.ErrNotFound)
	}
	return ch, nil
}

func (s *server) listChannels(w http.ResponseWriter, r *http.Request, p principal) error {
	chs, err := s.resp.Channels(r.Context())
	if err != nil {
		return err
	}
	out := make([]channelJSON, 0, len(chs))
	for _, ch := range chs {
		out = append(out, channelView(ch))
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
	return nil
}

func (s *server) getChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.findChannel(r.Context(), r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, channelView(ch))
	return nil
}

func (s *server) createChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	var req channelRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ch := req.channel()
	if err := ch.Validate(); err != nil {
		return err
	}
	if s.resp.HasChannel(r.Context(), ch.Name) {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("channel %q already exists", ch.Name), Field: "name"}
	}
	ch.CreatedAt = s.now().UTC()
	ch, err := s.st.CreateChannel(r.Context(), p.actor(), ch)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, channelView(ch))
	return nil
}

func (s *server) updateChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findChannel(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("channel", cur.Name)
	}
	var req channelRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ch := req.channel()
	ch.ID = cur.ID
	if ch.Name == "" {
		ch.Name = cur.Name
	}
	// An empty secret keeps the stored one; validate with it in place.
	probe := ch
	if probe.Secret == "" {
		probe.Secret = cur.Secret
	}
	if probe.Email != nil && probe.Email.Password == "" && cur.Email != nil {
		e := *probe.Email
		e.Password = cur.Email.Password
		probe.Email = &e
	}
	if err := probe.Validate(); err != nil {
		return err
	}
	if ch.Name != cur.Name && s.resp.HasChannel(r.Context(), ch.Name) {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("channel %q already exists", ch.Name), Field: "name"}
	}
	ch, err = s.st.UpdateChannel(r.Context(), p.actor(), ch)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, channelView(ch))
	return nil
}

func (s *server) deleteChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findChannel(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("channel", cur.Name)
	}
	if by, err := s.usedBy(r.Context(), oncall.TargetChannel, cur.Name); err != nil {
		return err
	} else if by != "" {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("channel %q is a target of escalation policy %q; change that first", cur.Name, by)}
	}
	if err := s.st.DeleteChannel(r.Context(), p.actor(), cur.ID); err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// testChannel sends a test message through a channel synchronously and
// reports the result; it is not retried and not in the delivery log.
func (s *server) testChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.findChannel(r.Context(), r)
	if err != nil {
		return err
	}
	now := s.now()
	msg := notify.Message{Event: "test", Title: "nocsoc test notification", Severity: "info", Team: alert.TeamNOC, Status: "test",
		Summary: "sent by " + p.actor().Name + " to check the channel " + ch.Name, URL: s.publicURL + "/", Time: now.UTC()}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	status, sendErr := s.sender.Send(ctx, ch, msg)
	latency := time.Since(start)
	out := map[string]any{"channel": ch.Name, "type": ch.Type, "ok": sendErr == nil, "latency_ms": ms(latency)}
	if status != 0 {
		out["http_status"] = status
	}
	if sendErr != nil {
		out["error"] = sendErr.Error()
	}
	if err := s.st.AppendAudit(r.Context(), p.actor(), "channel.test", "channel:"+ch.Name, nil, map[string]any{"ok": sendErr == nil, "http_status": status}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Runbooks.

type runbookJSON struct {
	runbook.Runbook
	HTML template.HTML `json:"html,omitempty"`
}

func (s *server) findRunbook(ctx context.Context, r *http.Request) (runbook.Runbook, error) {
	id, name := refParam(r)
	if id != 0 {
		return s.st.GetRunbook(ctx, id)
	}
	return s.st.RunbookByName(ctx, name)
}

func (s *server) listRunbooks(w http.ResponseWriter, r *http.Request, p principal) error {
	rbs, err := s.st.ListRunbooks(r.Context())
	if err != nil {
		return err
	}
	if rbs == nil {
		rbs = []runbook.Runbook{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runbooks": rbs})
	return nil
}

func (s *server) getRunbook(w http.ResponseWriter, r *http.Request, p principal) error {
	rb, err := s.findRunbook(r.Context(), r)
	if err != nil {
		return err
	}
	html, err := runbook.Render(rb.Markdown)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, runbookJSON{Runbook: rb, HTML: html})
	return nil
}

type runbookRequest struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Markdown string   `json:"markdown"`
	Checks   []string `json:"checks"`
	Rules    []string `json:"rules"`
	Matchers []string `json:"matchers"`
	Team     string   `json:"team"`
}

func (q runbookRequest) runbook() runbook.Runbook {
	return runbook.Runbook{Name: q.Name, Title: q.Title, Markdown: q.Markdown, Checks: q.Checks, Rules: q.Rules, Matchers: q.Matchers, Team: q.Team}
}

func (s *server) createRunbook(w http.ResponseWriter, r *http.Request, p principal) error {
	var req runbookRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	rb := req.runbook()
	if err := rb.Validate(); err != nil {
		return err
	}
	rb, err := s.st.CreateRunbook(r.Context(), p.actor(), rb)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	html, err := runbook.Render(rb.Markdown)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, runbookJSON{Runbook: rb, HTML: html})
	return nil
}

func (s *server) updateRunbook(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findRunbook(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("runbook", cur.Name)
	}
	var req runbookRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	rb := req.runbook()
	rb.ID = cur.ID
	if rb.Name == "" {
		rb.Name = cur.Name
	}
	if err := rb.Validate(); err != nil {
		return err
	}
	rb, err = s.st.UpdateRunbook(r.Context(), p.actor(), rb)
	if err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	html, err := runbook.Render(rb.Markdown)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, runbookJSON{Runbook: rb, HTML: html})
	return nil
}

func (s *server) deleteRunbook(w http.ResponseWriter, r *http.Request, p principal) error {
	cur, err := s.findRunbook(r.Context(), r)
	if err != nil {
		return err
	}
	if cur.Provisioned {
		return errProvisioned("runbook", cur.Name)
	}
	if err := s.st.DeleteRunbook(r.Context(), p.actor(), cur.ID); err != nil {
		return err
	}
	if err := s.reload(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Notifications.

var deliveryStatuses = []string{"sent", "failed", "dead"}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	f := store.DeliveryFilter{Status: q.Get("status"), Channel: q.Get("channel")}
	if f.Status != "" && !slices.Contains(deliveryStatuses, f.Status) {
		return badRequest("status", "status must be sent, failed or dead, got %q", f.Status)
	}
	var err error
	if f.IncidentID, err = beforeParam(r, "incident", "an incident"); err != nil {
		return err
	}
	if f.Limit, err = intParam(r, "limit", 100, 1000); err != nil {
		return err
	}
	if f.BeforeID, err = beforeParam(r, "before", "a delivery"); err != nil {
		return err
	}
	ds, err := s.st.ListDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []notify.Delivery{}
	}
	resp := map[string]any{"deliveries": ds}
	if len(ds) == f.Limit {
		resp["next_before"] = ds[len(ds)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request, p principal) error {
	limit, err := intParam(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	ds, err := s.st.DeadLetters(r.Context(), limit)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []notify.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": ds})
	return nil
}

// Operation metrics.

func (s *server) operationMetrics(w http.ResponseWriter, r *http.Request, p principal) error {
	from, to, err := s.timeRange(r, 30*24*time.Hour)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := opmetrics.Filter{From: from.UTC(), To: to.UTC(), Team: q.Get("team"), Severity: q.Get("severity"), Service: q.Get("service")}
	if err := validTeam("team", f.Team); err != nil {
		return err
	}
	if err := validSeverity(f.Severity); err != nil {
		return err
	}
	incs, err := s.st.IncidentsForMetrics(r.Context(), from, to)
	if err != nil {
		return err
	}
	alerts := -1 // per-service volume is not stored: Compute sums incidents' alerts
	if f.Service == "" {
		rows, err := s.st.AlertVolume(r.Context(), from, to)
		if err != nil {
			return err
		}
		alerts = 0
		for _, row := range rows {
			if (f.Team == "" || row.Team == f.Team) && (f.Severity == "" || row.Severity == f.Severity) {
				alerts += row.Alerts
			}
		}
	}
	writeJSON(w, http.StatusOK, opmetrics.Compute(incs, alerts, f))
	return nil
}
