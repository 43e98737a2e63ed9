package agent

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// ParseDpkgStatus reads dpkg's status database (/var/lib/dpkg/status) and
// returns the packages whose state is "install ok installed", sorted by
// name and architecture. Reading the file directly avoids depending on
// dpkg-query being present or fast.
func ParseDpkgStatus(r io.Reader) ([]agentproto.Package, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []agentproto.Package
	var cur agentproto.Package
	var status string
	line, start := 0, 0
	flush := func() error {
		if cur.Name == "" && status == "" && cur.Version == "" {
			return nil
		}
		if cur.Name == "" {
			return fmt.Errorf("dpkg status: stanza at line %d has no Package field", start)
		}
		if strings.HasSuffix(status, " installed") && !strings.HasPrefix(status, "purge") && !strings.HasPrefix(status, "deinstall") {
			out = append(out, cur)
		}
		cur, status = agentproto.Package{}, ""
		return nil
	}
	last := ""
	for sc.Scan() {
		line++
		l := sc.Text()
		if strings.TrimSpace(l) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			last = ""
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("dpkg status: line %d: continuation line outside a field", line)
			}
			continue // multi-line values (Description, Conffiles) are not needed
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("dpkg status: line %d: expected \"Field: value\", got %q", line, l)
		}
		if cur.Name == "" && status == "" && cur.Version == "" {
			start = line
		}
		last = k
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "Architecture":
			cur.Arch = v
		case "Status":
			status = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkg status: line %d: %w", line+1, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b agentproto.Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Arch, b.Arch)
	})
	return out, nil
}

// tcpListen is the kernel's TCP_LISTEN state in /proc/net/tcp.
const tcpListen = "0A"

// ParseProcNetTCP reads /proc/net/tcp or /proc/net/tcp6 (proto "tcp" or
// "tcp6") and returns the listening sockets, deduplicated and sorted.
func ParseProcNetTCP(r io.Reader, proto string) ([]agentproto.Port, error) {
	sc := bufio.NewScanner(r)
	var out []agentproto.Port
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 && len(f) > 0 && f[0] == "sl" {
			continue // header
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("%s: line %d: %d fields, want at least 4", proto, line, len(f))
		}
		if f[3] != tcpListen {
			continue
		}
		hexIP, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("%s: line %d: local_address %q has no port", proto, line, f[1])
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: port %q: %w", proto, line, hexPort, err)
		}
		ip, err := procIP(hexIP)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: address %q: %w", proto, line, hexIP, err)
		}
		out = append(out, agentproto.Port{Proto: proto, Addr: ip.String(), Port: int(port)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", proto, err)
	}
	slices.SortFunc(out, comparePorts)
	return slices.Compact(out), nil
}

func comparePorts(a, b agentproto.Port) int {
	if c := strings.Compare(a.Proto, b.Proto); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return a.Port - b.Port
	}
	return strings.Compare(a.Addr, b.Addr)
}

// procIP decodes the kernel's address notation: the address as 32-bit
// words, each printed in host (little-endian) byte order.
func procIP(h string) (net.IP, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, err
	}
	if len(b) != 4 && len(b) != 16 {
		return nil, fmt.Errorf("length %d bytes, want 4 or 16", len(b))
	}
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return ip, nil
}

// ParsePasswd reads /etc/passwd.
func ParsePasswd(r io.Reader) ([]agentproto.User, error) {
	var out []agentproto.User
	err := colonLines(r, "passwd", 7, func(line int, f []string) error {
		uid, err := strconv.Atoi(f[2])
		if err != nil {
			return fmt.Errorf("passwd: line %d: uid %q is not a number", line, f[2])
		}
		gid, err := strconv.Atoi(f[3])
		if err != nil {
			return fmt.Errorf("passwd: line %d: gid %q is not a number", line, f[3])
		}
		out = append(out, agentproto.User{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]})
		return nil
	})
	return out, err
}

// ParseGroup reads /etc/group.
func ParseGroup(r io.Reader) ([]agentproto.Group, error) {
	var out []agentproto.Group
	err := colonLines(r, "group", 4, func(line int, f []string) error {
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return fmt.Errorf("group: line %d: gid %q is not a number", line, f[2])
		}
		g := agentproto.Group{Name: f[0], GID: gid}
		if f[3] != "" {
			g.Members = strings.Split(f[3], ",")
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// colonLines calls fn with the fields of each non-empty, non-comment line
// of a colon-separated file, which must have exactly n fields. NIS
// compat entries ("+", "-") are skipped: they are not local accounts.
func colonLines(r io.Reader, what string, n int, fn func(line int, f []string) error) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == '+' || l[0] == '-' {
			continue
		}
		f := strings.Split(l, ":")
		if len(f) != n {
			return fmt.Errorf("%s: line %d: %d fields, want %d", what, line, len(f), n)
		}
		if f[0] == "" {
			return fmt.Errorf("%s: line %d: empty name", what, line)
		}
		if err := fn(line, f); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
