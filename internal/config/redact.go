package config

import (
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/maintenance"
	"github.com/nocsoc/nocsoc/internal/notify"
)

// Secret is what Redacted prints in place of a secret value.
const Secret = "<secret>"

// redacted returns a deep enough copy of c with every secret replaced.
// Secrets are listed here explicitly (push tokens, channel secrets, email
// passwords) because the shared check types carry no secret marker.
func (c *Config) redacted() *Config {
	out := *c
	out.Checks = make([]check.Spec, len(c.Checks))
	for i, s := range c.Checks {
		if s.Push != nil && s.Push.Token != "" {
			p := *s.Push
			p.Token = Secret
			s.Push = &p
		}
		out.Checks[i] = s
	}
	out.Maintenance = slices.Clone(c.Maintenance)
	out.Alerting.Channels = make([]notify.Channel, len(c.Alerting.Channels))
	for i, ch := range c.Alerting.Channels {
		if ch.Secret != "" {
			ch.Secret = Secret
		}
		if ch.Email != nil && ch.Email.Password != "" {
			e := *ch.Email
			e.Password = Secret
			ch.Email = &e
		}
		out.Alerting.Channels[i] = ch
	}
	return &out
}

// Redacted returns the configuration as YAML, in the file's own shape, with
// every secret (push tokens, channel secrets, SMTP passwords) replaced by
// "<secret>". Empty and unset values are left out so the output reads like a
// hand-written file; it loads again with Load.
func (c *Config) Redacted() string {
	var n yaml.Node
	if err := n.Encode(c.redacted()); err != nil {
		// Encoding plain structs of strings, numbers and durations cannot
		// fail; say so loudly rather than print a partial config.
		return "# config: cannot encode: " + err.Error() + "\n"
	}
	prune(&n)
	b, err := yaml.Marshal(&n)
	if err != nil {
		return "# config: cannot encode: " + err.Error() + "\n"
	}
	return string(b)
}

// prune removes null, empty and zero-time entries from mappings.
func prune(n *yaml.Node) {
	for _, c := range n.Content {
		prune(c)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !empty(n.Content[i+1]) {
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
	}
	n.Content = kept
}

func empty(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		return len(n.Content) == 0
	case yaml.ScalarNode:
		return n.ShortTag() == "!!null" || (n.ShortTag() == "!!str" && n.Value == "") ||
			n.Value == (maintenance.Window{}).Start.Format("2006-01-02T15:04:05Z07:00")
	}
	return false
}
