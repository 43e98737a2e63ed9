package compliance

import (
	"sort"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Facts is one endpoint's facts indexed for evaluation: the agent's
// inventory (packages, running services, ports) and its compliance facts
// (files, sysctls, commands, enabled services).
type Facts struct {
	Endpoint    string
	Hostname    string
	CollectedAt time.Time

	Files    map[string]*agentproto.FileFact
	Sysctls  map[string]agentproto.SysctlFact
	Commands map[string]*agentproto.CommandFact

	Packages      map[string]string // name → version
	PackagesKnown bool
	Running       map[string]bool
	RunningKnown  bool
	Enabled       map[string]bool
	EnabledKnown  bool
	Ports         []agentproto.Port
	PortsKnown    bool
}

// NewFacts indexes an endpoint's latest inventory and facts; either may
// be nil (then the tests that need it evaluate to error).
func NewFacts(endpoint, hostname string, inv *agentproto.Inventory, f *agentproto.Facts) *Facts {
	x := &Facts{Endpoint: endpoint, Hostname: hostname, Files: map[string]*agentproto.FileFact{},
		Sysctls: map[string]agentproto.SysctlFact{}, Commands: map[string]*agentproto.CommandFact{}}
	if inv != nil {
		x.CollectedAt = inv.CollectedAt
		x.Packages = make(map[string]string, len(inv.Packages))
		for _, p := range inv.Packages {
			x.Packages[p.Name] = p.Version
		}
		x.PackagesKnown = len(inv.Packages) > 0
		x.Running = map[string]bool{}
		for _, s := range inv.Services {
			x.Running[s] = true
		}
		x.RunningKnown = len(inv.Services) > 0
		x.Ports = inv.Ports
		x.PortsKnown = true
	}
	if f != nil {
		if f.CollectedAt.After(x.CollectedAt) {
			x.CollectedAt = f.CollectedAt
		}
		for i := range f.Files {
			x.Files[f.Files[i].Path] = &f.Files[i]
		}
		for _, s := range f.Sysctls {
			x.Sysctls[s.Key] = s
		}
		for i := range f.Commands {
			x.Commands[f.Commands[i].Name] = &f.Commands[i]
		}
		if f.ServicesKnown {
			x.EnabledKnown = true
			x.Enabled = make(map[string]bool, len(f.ServicesEnabled))
			for _, s := range f.ServicesEnabled {
				x.Enabled[s] = true
			}
		}
	}
	return x
}

// serviceUnit turns "ssh" into "ssh.service".
func serviceUnit(name string) string {
	if strings.Contains(name, ".") {
		return name
	}
	return name + ".service"
}

// FactNeeds is what a set of checks reads beyond the inventory.
type FactNeeds struct {
	files, contents, sysctls, commands map[string]bool
}

func newNeeds() FactNeeds {
	return FactNeeds{files: map[string]bool{}, contents: map[string]bool{}, sysctls: map[string]bool{}, commands: map[string]bool{}}
}

// AgentSpec is the spec sent to agents.
func (n FactNeeds) AgentSpec() agentproto.FactSpec {
	keys := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return agentproto.FactSpec{Files: keys(n.files), Contents: keys(n.contents), Sysctls: keys(n.sysctls), Commands: keys(n.commands)}
}
