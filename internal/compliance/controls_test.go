package compliance

import (
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/policies"
)

// cisDebian12 is every CIS Debian Linux 12 recommendation the built-in
// pack cites, with a short form of its title. Ids and titles were checked on
// 2026-11-27 against ComplianceAsCode's controls/cis_debian12.yml (CIS
// Debian Linux 12 Benchmark v1.1.0; docs/compliance.md names the commit).
// A typo or a renumbered id fails TestBuiltinPackControlsKnown.
var cisDebian12 = map[string]string{
	"1.1.2.1.4": "noexec option set on /tmp partition",
	"1.2.2.1":   "updates, patches and security software installed",
	"1.3.1.1":   "AppArmor is installed",
	"1.3.1.2":   "AppArmor enabled in the bootloader configuration",
	"1.5.1":     "address space layout randomization enabled",
	"1.5.2":     "ptrace_scope is restricted",
	"1.6.3":     "remote login warning banner configured",
	"2.1.2":     "avahi daemon services not in use",
	"2.1.6":     "ftp server services not in use",
	"2.1.10":    "nis server services not in use",
	"2.1.11":    "print server services not in use",
	"2.1.12":    "rpcbind services not in use",
	"2.1.15":    "snmp services not in use",
	"2.1.16":    "tftp server services not in use",
	"2.1.19":    "xinetd services not in use",
	"2.1.22":    "only approved services listening on a network interface",
	"2.2.1":     "NIS Client not installed",
	"2.3.1.1":   "a single time synchronization daemon in use",
	"3.3.1":     "ip forwarding disabled",
	"3.3.2":     "packet redirect sending disabled",
	"3.3.5":     "icmp redirects not accepted",
	"3.3.7":     "reverse path filtering enabled",
	"3.3.8":     "source routed packets not accepted",
	"3.3.9":     "suspicious packets logged",
	"3.3.10":    "tcp syn cookies enabled",
	"4.1.1":     "a single firewall configuration utility in use",
	"4.2.3":     "ufw service enabled",
	"5.1.1":     "permissions on /etc/ssh/sshd_config",
	"5.1.6":     "sshd Ciphers configured",
	"5.1.7":     "sshd ClientAliveInterval and ClientAliveCountMax",
	"5.1.8":     "sshd DisableForwarding enabled",
	"5.1.10":    "sshd HostbasedAuthentication disabled",
	"5.1.11":    "sshd IgnoreRhosts enabled",
	"5.1.13":    "sshd LoginGraceTime configured",
	"5.1.14":    "sshd LogLevel configured",
	"5.1.16":    "sshd MaxAuthTries configured",
	"5.1.19":    "sshd PermitEmptyPasswords disabled",
	"5.1.20":    "sshd PermitRootLogin disabled",
	"5.1.21":    "sshd PermitUserEnvironment disabled",
	"5.1.22":    "sshd UsePAM enabled",
	"5.2.1":     "sudo is installed",
	"5.2.3":     "sudo log file exists",
	"5.3.1.3":   "libpam-pwquality is installed",
	"5.3.3.1.1": "password failed attempts lockout configured",
	"5.3.3.2.2": "minimum password length configured",
	"5.4.1.1":   "password expiration configured",
	"5.4.1.2":   "minimum password days configured",
	"5.4.1.3":   "password expiration warning days configured",
	"6.1.2.4":   "journald Storage configured",
	"6.1.3.1":   "rsyslog is installed",
	"6.2.1.1":   "auditd packages installed",
	"6.2.1.2":   "auditd service enabled and active",
	"6.2.3.8":   "events that modify user/group information collected",
	"7.1.1":     "permissions on /etc/passwd",
	"7.1.3":     "permissions on /etc/group",
	"7.1.5":     "permissions on /etc/shadow",
	"7.1.11":    "world writable files and directories secured",
	"7.1.12":    "no files or directories without an owner and a group",
}

func TestKnownControls(t *testing.T) {
	iso, nist := KnownControls(FrameworkISO), KnownControls(FrameworkNIST)
	if len(iso) != 93 || iso[0] != "A.5.1" || iso[92] != "A.8.34" {
		t.Errorf("ISO 27001:2022 Annex A: %d controls (%s … %s), want 93", len(iso), iso[0], iso[len(iso)-1])
	}
	if len(nist) != 106 || nist[0] != "GV.OC-01" || nist[105] != "RC.CO-04" {
		t.Errorf("NIST CSF 2.0: %d subcategories (%s … %s), want 106", len(nist), nist[0], nist[len(nist)-1])
	}
	for _, list := range [][]string{iso, nist} {
		fw := FrameworkISO
		if strings.Contains(list[0], "-") {
			fw = FrameworkNIST
		}
		for _, id := range list {
			if err := ValidateControl(fw, id); err != nil {
				t.Errorf("known id refused: %v", err)
			}
		}
	}
	for _, c := range []struct{ fw, id, want string }{
		{FrameworkISO, "A.8.35", "theme A.8 has controls 1-34"},
		{FrameworkISO, "A.9.2.3", "expected an Annex A control"},
		{FrameworkNIST, "PR.AC-01", "PR.AC is not a NIST CSF 2.0 category"},
		{FrameworkNIST, "DE.CM-04", "DE.CM has no subcategory 04 in CSF 2.0"},
		{FrameworkNIST, "PR.PS-07", "PR.PS has no subcategory 07"},
		{FrameworkPCI, "13.1", "expected a requirement number 1-12"},
		{FrameworkPCI, "8.7.1", "requirement 8 has sections 8.1-8.6"},
		{FrameworkPCI, "12.11", "requirement 12 has sections 12.1-12.10"},
		{FrameworkCIS, "5.1.x", "expected a CIS section number"},
	} {
		err := ValidateControl(c.fw, c.id)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.fw, c.id, err, c.want)
		}
	}
	for _, ok := range []struct{ fw, id string }{{FrameworkPCI, "12.10.1"}, {FrameworkPCI, "10.2.1.5"}, {FrameworkNIST, "PR.DS-11"}} {
		if err := ValidateControl(ok.fw, ok.id); err != nil {
			t.Errorf("%s %s refused: %v", ok.fw, ok.id, err)
		}
	}
}

// TestBuiltinPackControlsKnown: every control the built-in pack cites is
// a known id of its framework, so a typo fails here.
func TestBuiltinPackControlsKnown(t *testing.T) {
	pols, errs := LoadDir(policies.Builtin, "builtin", "", "builtin")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	known := map[string]map[string]bool{FrameworkISO: {}, FrameworkNIST: {}, FrameworkCIS: {}}
	for _, fw := range []string{FrameworkISO, FrameworkNIST} {
		for _, id := range KnownControls(fw) {
			known[fw][id] = true
		}
	}
	for id := range cisDebian12 {
		known[FrameworkCIS][id] = true
	}
	used := map[string]bool{}
	for _, p := range pols {
		for _, c := range p.Checks {
			for fw, ids := range c.Controls {
				for _, id := range ids {
					if err := ValidateControl(fw, id); err != nil {
						t.Errorf("check %s: %v", c.ID, err)
					}
					if fw == FrameworkPCI {
						continue // format and section checked by ValidateControl
					}
					if !known[fw][id] {
						t.Errorf("check %s cites %s %s, which is not a known id", c.ID, fw, id)
					}
					if fw == FrameworkCIS {
						used[id] = true
					}
				}
			}
		}
	}
	for id := range cisDebian12 {
		if !used[id] {
			t.Errorf("CIS %s is in the verified table but no check cites it: remove it", id)
		}
	}
}
