package noc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Mail posture checks (check.TypeMailPosture) fail like any check when a
// record is missing or invalid. Besides, their records are remembered
// (fingerprint and canonical text in the store): a change is what a
// hijacked domain or DNS account looks like, so it raises a SOC alert that
// stays until an operator resolves it. The first complete reading is the
// baseline.

// MailChangeFingerprint identifies the "mail DNS records changed" alert of
// a check.
func MailChangeFingerprint(checkName string) string {
	return alert.Fingerprint(map[string]string{"alertname": "MailDNSRecordsChanged", "check": checkName})
}

func (s *Service) probeMail(ctx context.Context, c check.Spec) check.Result {
	r, recs := s.prober.ProbeMailPosture(ctx, c)
	s.metrics.observeProbe(c.Type, r)
	if recs.Complete {
		if err := s.trackMailRecords(ctx, c, recs); err != nil {
			s.log.Error("mail posture records", "check", c.Name, "err", err)
		}
	}
	return r
}

func (s *Service) trackMailRecords(ctx context.Context, c check.Spec, recs check.MailRecords) error {
	now := s.now().UTC()
	cur := store.MailPosture{Check: c.Name, Fingerprint: recs.Fingerprint(), Records: recs.Canonical(), SeenAt: now, ChangedAt: now}
	prev, err := s.st.MailPostureState(ctx, c.Name)
	if errors.Is(err, store.ErrNotFound) {
		return s.st.SaveMailPosture(ctx, cur)
	}
	if err != nil {
		return err
	}
	if prev.Fingerprint == cur.Fingerprint {
		return nil
	}
	if err := s.st.SaveMailPosture(ctx, cur); err != nil {
		return err
	}
	diff := lineDiff(prev.Records, cur.Records)
	s.log.Warn("mail DNS records changed", "check", c.Name, "domain", recs.Domain, "diff", diff)
	a := alert.Alert{
		Fingerprint: MailChangeFingerprint(c.Name),
		Status:      alert.StatusFiring,
		Team:        alert.TeamSOC,
		Origin:      alert.OriginHuman,
		Severity:    "high",
		Title:       fmt.Sprintf("Mail DNS records of %s changed", recs.Domain),
		Description: fmt.Sprintf("The MX, SPF, DMARC or DKIM records of %s changed since %s (check %s). "+
			"If nobody planned this, the domain or its DNS account may be hijacked.\n\n%s",
			recs.Domain, prev.SeenAt.Format("2006-01-02 15:04:05Z07:00"), c.Name, diff),
		Labels:      map[string]string{"alertname": "MailDNSRecordsChanged", "check": c.Name, "domain": recs.Domain},
		Source:      "check:" + c.Name,
		StartedAt:   now,
		LastSeenAt:  now,
		Occurrences: 1,
	}
	return s.alerts.Fire(ctx, a)
}

// lineDiff lists the lines removed ("- ") and added ("+ ") between two
// sorted texts.
func lineDiff(before, after string) string {
	in := func(text string) map[string]bool {
		m := map[string]bool{}
		for l := range strings.SplitSeq(text, "\n") {
			if l != "" {
				m[l] = true
			}
		}
		return m
	}
	b, a := in(before), in(after)
	var out []string
	for l := range strings.SplitSeq(before, "\n") {
		if l != "" && !a[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range strings.SplitSeq(after, "\n") {
		if l != "" && !b[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
