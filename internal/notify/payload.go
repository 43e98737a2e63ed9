package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// WebhookVersion is the "version" field of generic webhook payloads; it
// changes only when a field changes meaning or goes away.
const WebhookVersion = "1"

// webhookPayload is the generic webhook body: the Message plus a version.
func webhookPayload(m Message) ([]byte, error) {
	return json.Marshal(struct {
		Version string `json:"version"`
		Message
	}{WebhookVersion, m})
}

// Sign returns the X-Nocsoc-Signature header value for body sent at
// timestamp (unix seconds, as in X-Nocsoc-Timestamp):
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header (the X-Nocsoc-Signature value) is
// the signature of body sent at timestamp (the X-Nocsoc-Timestamp value)
// under secret. The comparison takes constant time. Receivers should also
// refuse timestamps too far from their own clock (5 minutes is usual) so
// that a captured request cannot be replayed later.
func VerifySignature(secret, timestamp string, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok || secret == "" || timestamp == "" {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, timestamp, body), "sha256="))
	return hmac.Equal(sig, want)
}

// severityColors are the Slack attachment colours per severity; resolved
// messages are green whatever the severity.
var severityColors = map[string]string{
	"critical": "#d00000",
	"high":     "#e8590c",
	"medium":   "#f2c744",
	"low":      "#439fe0",
	"info":     "#9e9e9e",
}

const resolvedColor = "#2eb886"

func slackColor(m Message) string {
	if m.Event == EventResolved {
		return resolvedColor
	}
	if c, ok := severityColors[m.Severity]; ok {
		return c
	}
	return severityColors["info"]
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Fallback  string       `json:"fallback"`
	Color     string       `json:"color"`
	Title     string       `json:"title"`
	TitleLink string       `json:"title_link,omitempty"`
	Text      string       `json:"text,omitempty"`
	Fields    []slackField `json:"fields"`
	Footer    string       `json:"footer"`
	TS        int64        `json:"ts,omitempty"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// slackPayload builds a Slack incoming-webhook message: a one-line text
// (shown in notifications and by clients without attachment support) and
// one colour-coded attachment with the facts and a link to the incident.
// Legacy attachments are used rather than Block Kit because Slack-compatible
// receivers (Mattermost, Rocket.Chat, Discord's /slack endpoint) read them.
func slackPayload(m Message, t *Templates) ([]byte, error) {
	subject, _ := t.Render(m)
	text := slackEscape.Replace(subject)
	if m.URL != "" {
		text += " <" + m.URL + "|open incident>"
	}
	a := slackAttachment{
		Fallback:  subject,
		Color:     slackColor(m),
		Title:     slackEscape.Replace(fmt.Sprintf("#%d %s", m.IncidentID, m.Title)),
		TitleLink: m.URL,
		Text:      slackEscape.Replace(m.Summary),
		Fields: []slackField{
			{Title: "Severity", Value: m.Severity, Short: true},
			{Title: "Status", Value: m.Status, Short: true},
			{Title: "Team", Value: m.Team, Short: true},
		},
		Footer: "nocsoc · " + m.Event,
	}
	if m.Tier != "" {
		a.Fields = append(a.Fields, slackField{Title: "Tier", Value: m.Tier, Short: true})
	}
	if len(m.Recipients) > 0 {
		a.Fields = append(a.Fields, slackField{Title: "Notified", Value: slackEscape.Replace(strings.Join(m.Recipients, ", "))})
	}
	if !m.Time.IsZero() {
		a.TS = m.Time.Unix()
	}
	return json.Marshal(slackMessage{Text: text, Attachments: []slackAttachment{a}})
}

// Teams: an Adaptive Card wrapped in a message, the payload that Teams
// Workflows ("Post to a channel when a webhook request is received") and
// the older incoming-webhook connectors both accept. Office 365 connector
// MessageCards are being retired by Microsoft, so they are not used.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string           `json:"$schema"`
	Type    string           `json:"type"`
	Version string           `json:"version"`
	Body    []map[string]any `json:"body"`
	Actions []map[string]any `json:"actions,omitempty"`
	MSTeams map[string]any   `json:"msteams,omitempty"`
}

// teamsColor maps a message to an Adaptive Card TextBlock colour.
func teamsColor(m Message) string {
	switch {
	case m.Event == EventResolved:
		return "Good"
	case m.Severity == "critical" || m.Severity == "high":
		return "Attention"
	case m.Severity == "medium":
		return "Warning"
	}
	return "Accent"
}

func teamsPayload(m Message, t *Templates) ([]byte, error) {
	subject, _ := t.Render(m)
	facts := []map[string]string{
		{"title": "Severity", "value": m.Severity},
		{"title": "Status", "value": m.Status},
		{"title": "Team", "value": m.Team},
	}
	if m.Tier != "" {
		facts = append(facts, map[string]string{"title": "Tier", "value": m.Tier})
	}
	if len(m.Recipients) > 0 {
		facts = append(facts, map[string]string{"title": "Notified", "value": strings.Join(m.Recipients, ", ")})
	}
	body := []map[string]any{
		{"type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium", "wrap": true, "color": teamsColor(m)},
	}
	if m.Summary != "" {
		body = append(body, map[string]any{"type": "TextBlock", "text": m.Summary, "wrap": true})
	}
	body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	card := adaptiveCard{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: "1.4",
		Body:    body,
		MSTeams: map[string]any{"width": "Full"},
	}
	if m.URL != "" {
		card.Actions = []map[string]any{{"type": "Action.OpenUrl", "title": fmt.Sprintf("Open incident #%d", m.IncidentID), "url": m.URL}}
	}
	return json.Marshal(teamsMessage{
		Type:        "message",
		Attachments: []teamsAttachment{{ContentType: "application/vnd.microsoft.card.adaptive", Content: card}},
	})
}
