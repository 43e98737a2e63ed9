package fleet

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/event"
)

// Diff turns the changes between two inventories of one endpoint into
// events (package.installed/removed/updated, port.opened/closed,
// user.created/deleted, group.created/deleted, service.started/stopped),
// ordered by kind then key so the output is deterministic.
func Diff(endpointID string, prev, cur agentproto.Inventory, at time.Time) []event.Event {
	host := cur.Hostname
	if host == "" {
		host = prev.Hostname
	}
	var out []event.Event
	mk := func(action, category, msg string, fields map[string]any) {
		e := event.Event{Time: cur.CollectedAt, Received: at, Host: host, Input: "agent", Raw: msg}
		if e.Time.IsZero() {
			e.Time = at
		}
		e.Set("event.action", action)
		e.Set("event.category", category)
		e.Set("event.kind", "state")
		e.Set("event.module", "inventory")
		e.Set("agent.id", endpointID)
		e.Set("message", msg)
		for k, v := range fields {
			e.Set(k, v)
		}
		out = append(out, e)
	}

	pkgKey := func(p agentproto.Package) string { return p.Name + ":" + p.Arch }
	oldP, newP := index(prev.Packages, pkgKey), index(cur.Packages, pkgKey)
	for _, k := range sortedKeys(newP, oldP) {
		o, had := oldP[k]
		n, has := newP[k]
		f := func(p agentproto.Package) map[string]any {
			return map[string]any{"package.name": p.Name, "package.version": p.Version, "package.architecture": p.Arch}
		}
		switch {
		case has && !had:
			mk("package.installed", "package", fmt.Sprintf("package %s %s installed on %s", n.Name, n.Version, host), f(n))
		case had && !has:
			mk("package.removed", "package", fmt.Sprintf("package %s %s removed from %s", o.Name, o.Version, host), f(o))
		case o.Version != n.Version:
			m := f(n)
			m["package.previous_version"] = o.Version
			mk("package.updated", "package", fmt.Sprintf("package %s updated from %s to %s on %s", n.Name, o.Version, n.Version, host), m)
		}
	}

	portKey := func(p agentproto.Port) string { return p.Proto + " " + p.Addr + " " + strconv.Itoa(p.Port) }
	oldN, newN := index(prev.Ports, portKey), index(cur.Ports, portKey)
	for _, k := range sortedKeys(newN, oldN) {
		o, had := oldN[k]
		n, has := newN[k]
		f := func(p agentproto.Port) map[string]any {
			return map[string]any{"network.transport": "tcp", "network.type": map[string]string{"tcp": "ipv4", "tcp6": "ipv6"}[p.Proto],
				"server.ip": p.Addr, "server.port": float64(p.Port)}
		}
		switch {
		case has && !had:
			mk("port.opened", "network", fmt.Sprintf("%s port %d opened on %s (%s)", n.Proto, n.Port, host, n.Addr), f(n))
		case had && !has:
			mk("port.closed", "network", fmt.Sprintf("%s port %d closed on %s (%s)", o.Proto, o.Port, host, o.Addr), f(o))
		}
	}

	userKey := func(u agentproto.User) string { return u.Name }
	oldU, newU := index(prev.Users, userKey), index(cur.Users, userKey)
	for _, k := range sortedKeys(newU, oldU) {
		o, had := oldU[k]
		n, has := newU[k]
		f := func(u agentproto.User) map[string]any {
			return map[string]any{"user.name": u.Name, "user.id": strconv.Itoa(u.UID), "user.group.id": strconv.Itoa(u.GID)}
		}
		switch {
		case has && !had:
			mk("user.created", "iam", fmt.Sprintf("local user %s (uid %d) created on %s", n.Name, n.UID, host), f(n))
		case had && !has:
			mk("user.deleted", "iam", fmt.Sprintf("local user %s (uid %d) deleted on %s", o.Name, o.UID, host), f(o))
		case o.UID != n.UID || o.GID != n.GID || o.Shell != n.Shell || o.Home != n.Home:
			mk("user.modified", "iam", fmt.Sprintf("local user %s changed on %s", n.Name, host), f(n))
		}
	}

	groupKey := func(g agentproto.Group) string { return g.Name }
	oldG, newG := index(prev.Groups, groupKey), index(cur.Groups, groupKey)
	for _, k := range sortedKeys(newG, oldG) {
		o, had := oldG[k]
		n, has := newG[k]
		switch {
		case has && !had:
			mk("group.created", "iam", fmt.Sprintf("local group %s created on %s", n.Name, host), map[string]any{"group.name": n.Name, "group.id": strconv.Itoa(n.GID)})
		case had && !has:
			mk("group.deleted", "iam", fmt.Sprintf("local group %s deleted on %s", o.Name, host), map[string]any{"group.name": o.Name, "group.id": strconv.Itoa(o.GID)})
		default:
			om, nm := set(o.Members), set(n.Members)
			for _, u := range sortedKeys(nm, om) {
				_, was := om[u]
				_, is := nm[u]
				f := map[string]any{"group.name": n.Name, "group.id": strconv.Itoa(n.GID), "user.name": u}
				if is && !was {
					mk("group.member_added", "iam", fmt.Sprintf("user %s added to group %s on %s", u, n.Name, host), f)
				} else if was && !is {
					mk("group.member_removed", "iam", fmt.Sprintf("user %s removed from group %s on %s", u, n.Name, host), f)
				}
			}
		}
	}

	oldS, newS := set(prev.Services), set(cur.Services)
	for _, k := range sortedKeys(newS, oldS) {
		_, had := oldS[k]
		_, has := newS[k]
		switch {
		case has && !had:
			mk("service.started", "process", fmt.Sprintf("service %s started on %s", k, host), map[string]any{"service.name": k})
		case had && !has:
			mk("service.stopped", "process", fmt.Sprintf("service %s stopped on %s", k, host), map[string]any{"service.name": k})
		}
	}
	return out
}

func index[T any](xs []T, key func(T) string) map[string]T {
	m := make(map[string]T, len(xs))
	for _, x := range xs {
		m[key(x)] = x
	}
	return m
}

func set(xs []string) map[string]struct{} {
	m := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		m[x] = struct{}{}
	}
	return m
}

// sortedKeys is the sorted union of the maps' keys.
func sortedKeys[A, B any](a map[string]A, b map[string]B) []string {
	seen := make(map[string]struct{}, len(a)+len(b))
	for k := range a {
		seen[k] = struct{}{}
	}
	for k := range b {
		seen[k] = struct{}{}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
