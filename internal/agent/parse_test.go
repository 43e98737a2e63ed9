package agent

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func TestParseDpkgStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []agentproto.Package
		wantErr string
	}{
		{"installed and removed", `Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.3.dfsg-3
Description: compression library
 continuation line
 .

Package: oldpkg
Status: deinstall ok config-files
Version: 1.0

Package: bash
Status: install ok installed
Version: 5.2-1
Architecture: amd64
`, []agentproto.Package{{Name: "bash", Version: "5.2-1", Arch: "amd64"}, {Name: "zlib1g", Version: "1:1.3.dfsg-3", Arch: "amd64"}}, ""},
		{"half installed is not installed", "Package: x\nStatus: install ok half-installed\nVersion: 1\n", nil, ""},
		{"empty", "", nil, ""},
		{"no package field", "Status: install ok installed\nVersion: 1\n", nil, "line 1 has no Package field"},
		{"garbage line", "Package: x\nthis is not a field\n", nil, "line 2"},
		{"continuation first", " leading\n", nil, "line 1: continuation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDpkgStatus(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseDpkgStatusThisMachine parses the real database when there is one.
func TestParseDpkgStatusThisMachine(t *testing.T) {
	f, err := os.Open("/var/lib/dpkg/status")
	if err != nil {
		t.Skip("no dpkg database here")
	}
	defer f.Close()
	pkgs, err := ParseDpkgStatus(f)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" {
			t.Errorf("incomplete package %+v", p)
		}
		found = found || p.Name == "dpkg"
	}
	if !found {
		t.Errorf("dpkg itself not among %d packages", len(pkgs))
	}
}

func TestParseProcNetTCP(t *testing.T) {
	tcp4 := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`
	tests := []struct {
		name, in, proto string
		want            []agentproto.Port
		wantErr         string
	}{
		{"tcp", tcp4, "tcp", []agentproto.Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 22}, {Proto: "tcp", Addr: "127.0.0.1", Port: 8080}}, ""},
		{"tcp6", tcp6, "tcp6", []agentproto.Port{{Proto: "tcp6", Addr: "::1", Port: 631}}, ""},
		{"bad port", "0: 0100007F:ZZZZ 00000000:0000 0A\n", "tcp", nil, "line 1: port"},
		{"short line", "0: 0100007F:1F90\n", "tcp", nil, "line 1: 2 fields"},
		{"bad address length", "0: 01007F:1F90 00000000:0000 0A\n", "tcp", nil, "length 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcNetTCP(strings.NewReader(tt.in), tt.proto)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePasswdGroup(t *testing.T) {
	users, err := ParsePasswd(strings.NewReader("# comment\nroot:x:0:0:root:/root:/bin/bash\n+nis\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantU := []agentproto.User{{Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/bash"}, {Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: "/bin/zsh"}}
	if !reflect.DeepEqual(users, wantU) {
		t.Errorf("users = %+v, want %+v", users, wantU)
	}
	groups, err := ParseGroup(strings.NewReader("root:x:0:\nsudo:x:27:alice,bob\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantG := []agentproto.Group{{Name: "root", GID: 0}, {Name: "sudo", GID: 27, Members: []string{"alice", "bob"}}}
	if !reflect.DeepEqual(groups, wantG) {
		t.Errorf("groups = %+v, want %+v", groups, wantG)
	}
	bad := []struct{ name, in, wantErr string }{
		{"passwd fields", "root:x:0:0:root:/root\n", "passwd: line 1: 6 fields, want 7"},
		{"passwd uid", "root:x:zero:0:root:/root:/bin/sh\n", `passwd: line 1: uid "zero"`},
		{"passwd empty name", ":x:0:0:root:/root:/bin/sh\n", "passwd: line 1: empty name"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if _, err := ParsePasswd(strings.NewReader(b.in)); err == nil || !strings.Contains(err.Error(), b.wantErr) {
				t.Errorf("err = %v, want containing %q", err, b.wantErr)
			}
		})
	}
	if _, err := ParseGroup(strings.NewReader("g:x:nope:\n")); err == nil || !strings.Contains(err.Error(), `group: line 1: gid "nope"`) {
		t.Errorf("group err = %v", err)
	}
}
