package agentproto

import "time"

// Updates is the endpoint's pending package updates, as its package
// manager sees them (from its last refreshed package lists).
type Updates struct {
	CollectedAt time.Time `json:"collected_at"`
	// Manager is "apt" or "dnf"; empty when none was found.
	Manager string          `json:"manager,omitempty"`
	Pending []PendingUpdate `json:"pending,omitempty"`
	// RebootRequired mirrors /var/run/reboot-required; RebootPackages
	// lists /var/run/reboot-required.pkgs.
	RebootRequired bool     `json:"reboot_required"`
	RebootPackages []string `json:"reboot_packages,omitempty"`
	// Error says why the list could not be read (the package manager
	// failed); Pending is then empty and means nothing.
	Error string `json:"error,omitempty"`
}

// PendingUpdate is one package with a newer version available.
type PendingUpdate struct {
	Name           string `json:"name"`
	Arch           string `json:"arch,omitempty"`
	CurrentVersion string `json:"current_version,omitempty"`
	Version        string `json:"version"`
	// Origin is the repository or suite offering the update, e.g.
	// "Debian-Security:12/stable-security".
	Origin   string `json:"origin,omitempty"`
	Security bool   `json:"security"`
}
