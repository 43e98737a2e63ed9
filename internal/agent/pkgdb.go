package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// ParseApkInstalled reads Alpine's package database (/lib/apk/db/installed):
// stanzas of "K:value" lines separated by blank lines, where P is the
// name, V the version and A the architecture. Packages are sorted by name
// and architecture.
func ParseApkInstalled(r io.Reader) ([]agentproto.Package, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []agentproto.Package
	var cur agentproto.Package
	line, start := 0, 1
	flush := func() error {
		if cur == (agentproto.Package{}) {
			return nil
		}
		if cur.Name == "" || cur.Version == "" {
			return fmt.Errorf("apk installed: stanza at line %d has no P: (name) or V: (version)", start)
		}
		out = append(out, cur)
		cur = agentproto.Package{}
		return nil
	}
	for sc.Scan() {
		line++
		l := sc.Text()
		if strings.TrimSpace(l) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			start = line + 1
			continue
		}
		if len(l) < 2 || l[1] != ':' {
			return nil, fmt.Errorf("apk installed: line %d: expected \"K:value\", got %q", line, l)
		}
		switch l[0] {
		case 'P':
			cur.Name = l[2:]
		case 'V':
			cur.Version = l[2:]
		case 'A':
			cur.Arch = l[2:]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("apk installed: line %d: %w", line+1, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	sortPackages(out)
	return out, nil
}

// rpmQueryFormat makes `rpm -qa` print one package per line: name, version
// (with epoch when set), architecture, tab-separated.
const rpmQueryFormat = `%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n`

// ParseRpmQuery reads the output of `rpm -qa --queryformat rpmQueryFormat`.
func ParseRpmQuery(r io.Reader) ([]agentproto.Package, error) {
	sc := bufio.NewScanner(r)
	var out []agentproto.Package
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 3 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("rpm -qa: line %d: expected name, version and arch separated by tabs, got %q", line, l)
		}
		arch := f[2]
		if arch == "(none)" {
			arch = "" // gpg-pubkey entries
		}
		out = append(out, agentproto.Package{Name: f[0], Version: f[1], Arch: arch})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("rpm -qa: %w", err)
	}
	sortPackages(out)
	return out, nil
}

// rpmPackages runs rpm when it is installed and the host has an rpm
// database; ok is false when there is no rpm.
func rpmPackages(ctx context.Context) (pkgs []agentproto.Package, ok bool, err error) {
	bin, err := exec.LookPath("rpm")
	if err != nil {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-qa", "--queryformat", rpmQueryFormat).Output()
	if err != nil {
		return nil, true, fmt.Errorf("rpm -qa: %w", err)
	}
	pkgs, err = ParseRpmQuery(strings.NewReader(string(out)))
	return pkgs, true, err
}

func sortPackages(ps []agentproto.Package) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Name != ps[j].Name {
			return ps[i].Name < ps[j].Name
		}
		return ps[i].Arch < ps[j].Arch
	})
}
