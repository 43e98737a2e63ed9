package fleet

import (
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func TestDiff(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := agentproto.Inventory{
		Hostname: "web1",
		Packages: []agentproto.Package{{Name: "bash", Version: "5.1", Arch: "amd64"}, {Name: "telnetd", Version: "0.17", Arch: "amd64"}},
		Ports:    []agentproto.Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 22}},
		Users:    []agentproto.User{{Name: "root"}, {Name: "olduser", UID: 1001}},
		Groups:   []agentproto.Group{{Name: "sudo", GID: 27, Members: []string{"alice"}}},
		Services: []string{"ssh.service"},
	}
	tests := []struct {
		name   string
		change func(inv *agentproto.Inventory)
		want   []string // event.action in order
		field  string   // checked on the first event
		value  any
	}{
		{"identical", func(inv *agentproto.Inventory) {}, nil, "", nil},
		{"package installed and removed", func(inv *agentproto.Inventory) {
			inv.Packages = []agentproto.Package{{Name: "bash", Version: "5.1", Arch: "amd64"}, {Name: "nmap", Version: "7.9", Arch: "amd64"}}
		}, []string{"package.installed", "package.removed"}, "package.name", "nmap"},
		{"package updated", func(inv *agentproto.Inventory) {
			inv.Packages = []agentproto.Package{{Name: "bash", Version: "5.2", Arch: "amd64"}, {Name: "telnetd", Version: "0.17", Arch: "amd64"}}
		}, []string{"package.updated"}, "package.previous_version", "5.1"},
		{"port opened and closed", func(inv *agentproto.Inventory) {
			inv.Ports = []agentproto.Port{{Proto: "tcp6", Addr: "::", Port: 4444}}
		}, []string{"port.closed", "port.opened"}, "server.port", float64(22)},
		{"user created and deleted", func(inv *agentproto.Inventory) {
			inv.Users = []agentproto.User{{Name: "root"}, {Name: "backdoor", UID: 0}}
		}, []string{"user.created", "user.deleted"}, "user.name", "backdoor"},
		{"group membership", func(inv *agentproto.Inventory) {
			inv.Groups = []agentproto.Group{{Name: "sudo", GID: 27, Members: []string{"alice", "mallory"}}, {Name: "docker", GID: 998}}
		}, []string{"group.created", "group.member_added"}, "group.name", "docker"},
		{"service stopped", func(inv *agentproto.Inventory) { inv.Services = nil }, []string{"service.stopped"}, "service.name", "ssh.service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := base
			cur.Packages = append([]agentproto.Package(nil), base.Packages...)
			tt.change(&cur)
			evs := Diff("ep1", base, cur, at)
			var got []string
			for _, e := range evs {
				got = append(got, e.String("event.action"))
				if e.Host != "web1" || e.String("agent.id") != "ep1" || e.Input != "agent" || e.Raw == "" {
					t.Errorf("event lacks host, agent id, input or raw: %+v", e)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("actions = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("actions = %v, want %v", got, tt.want)
				}
			}
			if tt.field != "" {
				if v, _ := evs[0].Get(tt.field); v != tt.value {
					t.Errorf("%s = %v, want %v", tt.field, v, tt.value)
				}
			}
		})
	}
}

func TestLabelString(t *testing.T) {
	if got := labelString(map[string]string{"mount": "/", "device": "sda1"}); got != "device=sda1,mount=/" {
		t.Errorf("labelString = %q", got)
	}
	if got := labelString(nil); got != "" {
		t.Errorf("labelString(nil) = %q", got)
	}
}
