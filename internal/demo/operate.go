package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Operator pace, in ticks: how long an incident sits before the demo
// operator touches it, and how often it looks at the queue.
const (
	heartbeatEveryTicks = 30
	operatorLookTicks   = 5
	operatorDelayTicks  = 20
)

// Rule ids of the built-in detections the operator looks for.
const (
	ruleSSHBruteForce = "6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04"
)

// heartbeats calls the push check's URL over HTTP, as a backup job's
// wrapper script would, until ctx ends.
func (d *Demo) heartbeats(ctx context.Context, baseURL string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	url := strings.TrimRight(baseURL, "/") + "/api/v1/push/" + d.pushToken
	for {
		form := neturl.Values{"status": {"ok"}, "duration": {"312s"}, "msg": {"backup finished: 14.2 GiB written"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(form.Encode()))
		if err != nil {
			return fmt.Errorf("demo heartbeat: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.log.Warn("heartbeat failed", "err", err)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				d.log.Warn("heartbeat refused", "status", resp.StatusCode)
			}
		}
		if !d.sleep(ctx, heartbeatEveryTicks) {
			return ctx.Err()
		}
	}
}

// ensureUsers creates the demo operator and the on-call users named by
// the schedules. They have no password (token-only), so nobody can sign
// in as them; a second start on the same data directory finds them there.
func ensureUsers(ctx context.Context, st *store.Store) error {
	names := append([]string{OperatorName}, demoUsers()...)
	for _, n := range names {
		if _, err := st.UserByName(ctx, n); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("demo: look up user %s: %w", n, err)
		}
		u := store.User{Name: n, Role: auth.RoleOperator, CreatedAt: time.Now().UTC()}
		if _, err := st.CreateUser(ctx, store.Actor{Name: OperatorName}, u); err != nil {
			return fmt.Errorf("demo: create user %s: %w", n, err)
		}
	}
	return nil
}

// operate works a few incidents the way an operator would, once each:
// acknowledges the certificate incident, hands the flapping cache from the
// NOC to the SOC with a note, and resolves the first SSH brute force with
// a postmortem. It returns when all three are done or ctx ends.
func (d *Demo) operate(ctx context.Context, a *app.App) error {
	if err := ensureUsers(ctx, a.Store()); err != nil {
		return err
	}
	actor := store.Actor{Name: OperatorName}
	resp := a.Response()
	var acked, handed, resolved bool
	minAge := time.Duration(operatorDelayTicks) * d.opts.Tick
	for !(acked && handed && resolved) {
		if !d.sleep(ctx, operatorLookTicks) {
			return ctx.Err()
		}
		open := true
		incs, err := a.Store().ListIncidents(ctx, store.IncidentFilter{Open: &open, Limit: 200})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.log.Warn("list incidents", "err", err)
			continue
		}
		now := time.Now()
		for _, inc := range incs {
			if now.Sub(inc.TriggeredAt) < minAge {
				continue
			}
			switch {
			case !acked && inc.Labels["check"] == "billing-cert" && inc.Status == incident.StatusTriggered:
				if _, err := resp.Acknowledge(ctx, actor, inc.ID); err != nil {
					d.log.Warn("acknowledge", "incident", inc.ID, "err", err)
					continue
				}
				_, _ = resp.AddNote(ctx, actor, inc.ID, "Certificate renewal ordered; the new one goes live with Thursday's deploy.")
				acked = true
				d.log.Info("demo operator acknowledged an incident", "incident", inc.ID, "title", inc.Title)
			case !handed && inc.Labels["check"] == "flaky-cache" && inc.Team == alert.TeamNOC:
				note := "flaky-cache flaps between 200 and 500 with no resource pressure and no deploy; " +
					"its error log shows bursts of odd keys. SOC: please check whether this is cache poisoning or abuse."
				if _, err := resp.Handoff(ctx, actor, inc.ID, alert.TeamSOC, false, note); err != nil {
					d.log.Warn("hand-off", "incident", inc.ID, "err", err)
					continue
				}
				handed = true
				d.log.Info("demo operator handed an incident from the NOC to the SOC", "incident", inc.ID, "title", inc.Title)
			case !resolved && inc.Labels["rule_id"] == ruleSSHBruteForce:
				if err := d.resolveWithPostmortem(ctx, a, inc); err != nil {
					d.log.Warn("resolve", "incident", inc.ID, "err", err)
					continue
				}
				resolved = true
			}
		}
	}
	d.log.Info("demo operator done: one incident acknowledged, one handed off, one resolved with a postmortem")
	return nil
}

func (d *Demo) resolveWithPostmortem(ctx context.Context, a *app.App, inc incident.Incident) error {
	actor := store.Actor{Name: OperatorName}
	resp := a.Response()
	ip := inc.Labels["source.ip"]
	if inc.Status == incident.StatusTriggered {
		if _, err := resp.Acknowledge(ctx, actor, inc.ID); err != nil {
			return err
		}
	}
	if ip != "" {
		if _, err := resp.AddObservable(ctx, actor, inc.ID, incident.Observable{Type: "ip", Value: ip, TLP: "amber"}); err != nil {
			d.log.Warn("add observable", "incident", inc.ID, "err", err)
		}
	}
	if _, err := resp.SetStatus(ctx, actor, inc.ID, incident.StatusResolved, "Source "+ip+" blocked at the edge firewall; no account was compromised."); err != nil {
		return err
	}
	_, err := resp.SavePostmortem(ctx, actor, inc.ID, incident.Postmortem{
		Category: "attack",
		Summary:  "Internet-wide SSH password guessing against the bastion from " + ip + ". Password authentication was still enabled for root.",
		ContributingFactors: []string{
			"PasswordAuthentication yes on the bastion",
			"no rate limiting of SSH connections per source",
		},
		ActionItems: []incident.ActionItem{
			{Title: "Disable password authentication and root login over SSH", Owner: "dave"},
			{Title: "Add fail2ban or an equivalent per-source rate limit", Owner: "erin"},
		},
	})
	if err != nil {
		return err
	}
	d.log.Info("demo operator resolved an incident and wrote its postmortem", "incident", inc.ID, "title", inc.Title)
	return nil
}
