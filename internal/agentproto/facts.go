package agentproto

import (
	"path"
	"strings"
	"time"
)

// PathFactSpec is where an agent asks which compliance facts to collect
// (GET, agent credential). The answer is a FactSpec derived from the
// policies the server has loaded.
const PathFactSpec = "/api/v1/agent/facts-spec"

// Bounds on what an agent collects and the server accepts.
const (
	// MaxFactFiles bounds the files (metadata or content) in a spec.
	MaxFactFiles = 512
	// MaxFactSysctls bounds the sysctl keys in a spec.
	MaxFactSysctls = 256
	// MaxFileContent is the most bytes of one file's content collected;
	// longer files are cut and marked truncated.
	MaxFileContent = 64 << 10
	// MaxCommandOutput is the most bytes of one command's output kept.
	MaxCommandOutput = 64 << 10
	// MaxServices bounds the enabled-services list.
	MaxServices = 4096
)

// FactSpec tells the agent what to collect beyond its inventory. Files
// get metadata (existence, mode, owner); Contents are files whose text is
// read too; Commands are names from the allow-list (AllowedCommand), never
// command lines.
type FactSpec struct {
	Files    []string `json:"files,omitempty"`
	Contents []string `json:"contents,omitempty"`
	Sysctls  []string `json:"sysctls,omitempty"`
	Commands []string `json:"commands,omitempty"`
}

// Facts are the compliance facts an agent collected for a FactSpec.
// Packages, running services and listening ports come from the inventory.
type Facts struct {
	CollectedAt time.Time     `json:"collected_at"`
	Files       []FileFact    `json:"files,omitempty"`
	Sysctls     []SysctlFact  `json:"sysctls,omitempty"`
	Commands    []CommandFact `json:"commands,omitempty"`
	// ServicesEnabled are the systemd services enabled at boot; nil when
	// systemd is not available (ServicesKnown false).
	ServicesEnabled []string `json:"services_enabled,omitempty"`
	ServicesKnown   bool     `json:"services_known,omitempty"`
}

// FileFact is one file's state. Error is set when the file exists but
// could not be read (permission); Exists false means it is absent.
type FileFact struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	Mode   uint32 `json:"mode,omitempty"` // permission bits (0o7777)
	IsDir  bool   `json:"is_dir,omitempty"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Owner  string `json:"owner,omitempty"`
	Group  string `json:"group,omitempty"`
	Size   int64  `json:"size,omitempty"`
	// Content is present only for paths in FactSpec.Contents.
	Content    string `json:"content,omitempty"`
	HasContent bool   `json:"has_content,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
	Error      string `json:"error,omitempty"`
}

// SysctlFact is one kernel parameter; Found false when the key does not
// exist on the endpoint.
type SysctlFact struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	Found bool   `json:"found"`
}

// CommandFact is one allow-listed command's result. Missing means the
// program is not installed; Error any other failure to run it.
type CommandFact struct {
	Name      string `json:"name"`
	ExitCode  int    `json:"exit_code"`
	Output    string `json:"output,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Missing   bool   `json:"missing,omitempty"`
	Error     string `json:"error,omitempty"`
}

// AllowedCommand returns the fixed argument vector of an allow-listed
// command name. Policies may only name these; the agent runs nothing else.
func AllowedCommand(name string) ([]string, bool) {
	switch name {
	case "sshd-effective-config":
		return []string{"sshd", "-T"}, true
	case "ufw-status":
		return []string{"ufw", "status"}, true
	case "nft-ruleset":
		return []string{"nft", "list", "ruleset"}, true
	case "iptables-rules":
		return []string{"iptables", "-S"}, true
	case "timedatectl-show":
		return []string{"timedatectl", "show"}, true
	case "auditctl-rules":
		return []string{"auditctl", "-l"}, true
	case "apt-config-dump":
		return []string{"apt-config", "dump"}, true
	case "aa-enabled":
		return []string{"aa-enabled"}, true
	case "world-writable-files":
		return []string{"find", "/", "-xdev", "-type", "f", "-perm", "-0002", "-not", "-path", "/proc/*", "-not", "-path", "/sys/*", "-print"}, true
	case "unowned-files":
		return []string{"find", "/", "-xdev", "(", "-nouser", "-o", "-nogroup", ")", "-not", "-path", "/proc/*", "-print"}, true
	}
	return nil, false
}

// AllowedCommands lists the allow-list's names, sorted.
func AllowedCommands() []string {
	return []string{"aa-enabled", "apt-config-dump", "auditctl-rules", "iptables-rules", "nft-ruleset",
		"sshd-effective-config", "timedatectl-show", "ufw-status", "unowned-files", "world-writable-files"}
}

// ContentAllowed reports whether a file's content may be collected: an
// absolute, clean path that is not a secret store (shadow files, private
// keys). Metadata of any absolute path may be collected.
func ContentAllowed(p string) bool {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return false
	}
	switch p {
	case "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/security/opasswd":
		return false
	}
	base := path.Base(p)
	if strings.HasPrefix(p, "/etc/ssh/") && strings.HasPrefix(base, "ssh_host_") && strings.HasSuffix(base, "_key") {
		return false
	}
	if strings.HasSuffix(base, ".key") || strings.HasSuffix(base, ".pem") || strings.Contains(p, "/private/") || strings.HasPrefix(base, "id_") {
		return false
	}
	return true
}

// SysctlKeyValid reports whether k is a plausible sysctl key (dotted,
// lowercase letters, digits, '_' and '-'), so it maps to one file under
// /proc/sys.
func SysctlKeyValid(k string) bool {
	if k == "" || len(k) > 128 || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
