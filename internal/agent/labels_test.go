package agent

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestLabelFlag: bad or repeated --label flags stop the agent before it
// talks to any server.
func TestLabelFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--label", "Role=web"}, "must be 1-63 characters"},
		{[]string{"--label", "role"}, "want key=value"},
		{[]string{"--label", "role="}, "the value is empty"},
		{[]string{"--label", "role=web", "--label", "role=db"}, `"role" given twice`},
	} {
		args := append([]string{"--server", "http://127.0.0.1:1", "--state", t.TempDir()}, c.args...)
		err := Command(context.Background(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	o := Options{Server: "http://127.0.0.1:1", StateDir: t.TempDir(), Labels: map[string]string{"env": "a\tb"}}
	if err := o.normalize(); err == nil || !strings.Contains(err.Error(), "non-printable") {
		t.Errorf("Options with a bad label: %v", err)
	}
}
