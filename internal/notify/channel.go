// Package notify owns notification channels — generic webhook (HMAC
// signed), Slack- and Teams-compatible webhooks, email over SMTP — and the
// delivery of messages through them with retries, a delivery log and a
// dead-letter list.
package notify

import "time"

// Channel types.
const (
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
	TypeTeams   = "teams"
	TypeEmail   = "email"
)

// Types lists every channel type.
var Types = []string{TypeWebhook, TypeSlack, TypeTeams, TypeEmail}

// Channel is one configured destination. Secret and Email.Password are
// secrets: never logged, never in API output (json:"-"); the API accepts
// them through its own request type.
type Channel struct {
	ID   int64  `json:"id" yaml:"-"`
	Name string `json:"name" yaml:"name"`
	Type string `json:"type" yaml:"type"`
	// URL is the endpoint of webhook, slack and teams channels.
	URL string `json:"url,omitempty" yaml:"url"`
	// Secret is the HMAC-SHA256 key of a webhook channel.
	Secret      string         `json:"-" yaml:"secret"`
	Email       *EmailSettings `json:"email,omitempty" yaml:"email"`
	CreatedAt   time.Time      `json:"created_at" yaml:"-"`
	Provisioned bool           `json:"provisioned" yaml:"-"`
}

// EmailSettings configures an email channel.
type EmailSettings struct {
	To       []string `json:"to" yaml:"to"`
	From     string   `json:"from" yaml:"from"`
	Host     string   `json:"host" yaml:"host"`
	Port     int      `json:"port" yaml:"port"`
	Username string   `json:"username,omitempty" yaml:"username"`
	Password string   `json:"-" yaml:"password"`
	// StartTLS defaults to true; TLSVerify defaults to true.
	StartTLS  *bool `json:"starttls,omitempty" yaml:"starttls"`
	TLSVerify *bool `json:"tls_verify,omitempty" yaml:"tls_verify"`
}

// Message is what is sent: one notification about one incident.
type Message struct {
	// Event is what happened: "triggered", "escalated", "acknowledged",
	// "resolved", "handoff", "test".
	Event      string            `json:"event"`
	IncidentID int64             `json:"incident_id"`
	Title      string            `json:"title"`
	Severity   string            `json:"severity"`
	Team       string            `json:"team"`
	Status     string            `json:"status"`
	Tier       string            `json:"tier,omitempty"`
	Summary    string            `json:"summary,omitempty"`
	URL        string            `json:"url"`
	Labels     map[string]string `json:"labels,omitempty"`
	Recipients []string          `json:"recipients,omitempty"`
	Time       time.Time         `json:"time"`
}

// Delivery is one attempt to send a message through a channel.
type Delivery struct {
	ID         int64     `json:"id"`
	IncidentID int64     `json:"incident_id"`
	Channel    string    `json:"channel"`
	Event      string    `json:"event"`
	Attempt    int       `json:"attempt"`
	Status     string    `json:"status"` // "sent", "failed", "dead"
	Error      string    `json:"error,omitempty"`
	HTTPStatus int       `json:"http_status,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	Time       time.Time `json:"time"`
}
