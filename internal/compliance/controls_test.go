package compliance

import (
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/policies"
)

// cisDebian12 is every CIS Debian Linux 12 recommendation the built-in
// pack cites, with what it covers (our words), as checked on 2026-11-27
// (docs/compliance.md says against what). A typo or a renumbered id fails
// TestBuiltinPackControlsKnown.
var cisDebian12 = map[string]string{
	"1.1.2.1.4": "noexec on /tmp",
	"1.2.2.1":   "updates and patches installed",
	"1.3.1.1":   "AppArmor installed",
	"1.3.1.2":   "AppArmor enabled in the bootloader",
	"1.5.1":     "ASLR enabled",
	"1.5.2":     "ptrace_scope restricted",
	"1.6.3":     "remote login warning banner",
	"2.1.2":     "avahi daemon not in use",
	"2.1.6":     "ftp server not in use",
	"2.1.10":    "nis server not in use",
	"2.1.11":    "print server not in use",
	"2.1.12":    "rpcbind not in use",
	"2.1.15":    "snmp not in use",
	"2.1.16":    "tftp server not in use",
	"2.1.19":    "xinetd not in use",
	"2.1.22":    "only approved services listen",
	"2.2.1":     "NIS client not installed",
	"2.3.1.1":   "a single time synchronisation daemon",
	"3.3.1":     "ip forwarding disabled",
	"3.3.2":     "packet redirect sending disabled",
	"3.3.5":     "icmp redirects not accepted",
	"3.3.7":     "reverse path filtering",
	"3.3.8":     "source routed packets not accepted",
	"3.3.9":     "suspicious packets logged",
	"3.3.10":    "tcp syn cookies",
	"4.1.1":     "a single firewall utility",
	"4.2.3":     "ufw service enabled",
	"5.1.1":     "sshd_config permissions",
	"5.1.6":     "sshd Ciphers",
	"5.1.7":     "sshd ClientAliveInterval/CountMax",
	"5.1.8":     "sshd DisableForwarding",
	"5.1.10":    "sshd HostbasedAuthentication",
	"5.1.11":    "sshd IgnoreRhosts",
	"5.1.13":    "sshd LoginGraceTime",
	"5.1.14":    "sshd LogLevel",
	"5.1.16":    "sshd MaxAuthTries",
	"5.1.19":    "sshd PermitEmptyPasswords",
	"5.1.20":    "sshd PermitRootLogin",
	"5.1.21":    "sshd PermitUserEnvironment",
	"5.1.22":    "sshd UsePAM",
	"5.2.1":     "sudo installed",
	"5.2.3":     "sudo log file",
	"5.3.1.3":   "libpam-pwquality installed",
	"5.3.3.1.1": "failed attempts lockout",
	"5.3.3.2.2": "minimum password length",
	"5.4.1.1":   "password expiration",
	"5.4.1.2":   "minimum password days",
	"5.4.1.3":   "password expiration warning",
	"6.2.1.1":   "journald (systemd-journald service)",
	"6.3.1.1":   "auditd packages installed",
	"6.3.1.2":   "auditd enabled and active",
	"6.3.3.8":   "user/group changes audited",
	"7.1.1":     "/etc/passwd permissions",
	"7.1.3":     "/etc/group permissions",
	"7.1.5":     "/etc/shadow permissions",
	"7.1.11":    "world writable files secured",
	"7.1.12":    "no unowned or ungrouped files",
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
