package fleet

import (
	"context"
	"time"

	"github.com/nocsoc/nocsoc/internal/store"
)

// Root-cause attribution: while an endpoint is unresponsive, the alerts of
// checks whose target is that machine (its hostname or one of its IP
// addresses from the latest inventory) are its symptoms. The NOC's check
// service asks HostRootCause when a check alert is about to open, and is
// told through RootCauseSink when an endpoint goes unresponsive and when
// it is back.

// RootCauseSink is the NOC side of attribution (internal/noc).
type RootCauseSink interface {
	// AttributeHost says that hosts (a hostname and addresses) are down
	// because of rootCause ("endpoint:<hostname>").
	AttributeHost(ctx context.Context, rootCause string, hosts []string)
	// ReleaseHost says that rootCause is gone.
	ReleaseHost(ctx context.Context, rootCause string, hosts []string)
}

// RootCausePrefix starts the root cause of an unresponsive endpoint.
const RootCausePrefix = "endpoint:"

// SetRootCauseSink installs the NOC side of attribution (after both
// services exist).
func (s *Service) SetRootCauseSink(r RootCauseSink) {
	s.ops.rcMu.Lock()
	s.ops.rc = r
	s.ops.rcMu.Unlock()
}

func (s *Service) rootCauseSink() RootCauseSink {
	s.ops.rcMu.Lock()
	defer s.ops.rcMu.Unlock()
	return s.ops.rc
}

// HostRootCause answers for a check target host at time at: rootCause is
// "endpoint:<hostname>" when an endpoint answering to host is
// unresponsive. When one has missed a heartbeat but is not declared
// unresponsive yet, holdUntil is when that verdict is due: the caller
// holds the check's page until then, so an operator is paged once, for
// the machine, not for each of its checks.
func (s *Service) HostRootCause(ctx context.Context, host string, at time.Time) (rootCause string, holdUntil time.Time, err error) {
	eps, err := s.o.Store.EndpointsForHost(ctx, host)
	if err != nil {
		return "", time.Time{}, err
	}
	for _, e := range eps {
		switch e.Status {
		case store.EndpointUnresponsive:
			return RootCausePrefix + e.Hostname, time.Time{}, nil
		case store.EndpointOnline:
			iv := time.Duration(e.IntervalMS) * time.Millisecond
			if iv <= 0 {
				continue
			}
			// Overdue by more than half an interval: a heartbeat was
			// missed. The verdict comes after three, at the next check.
			if at.Sub(e.LastSeenAt) > iv+iv/2 {
				due := e.LastSeenAt.Add(3*iv + s.o.CheckEvery)
				if due.After(holdUntil) {
					holdUntil = due
				}
			}
		}
	}
	return "", holdUntil, nil
}

// endpointHosts are the names a check may use for e.
func (s *Service) endpointHosts(ctx context.Context, e store.Endpoint) []string {
	hosts := []string{e.Hostname}
	addrs, err := s.o.Store.EndpointAddresses(ctx, e.ID)
	if err != nil {
		s.log.Warn("endpoint addresses", "endpoint", e.ID, "err", err)
	}
	return append(hosts, addrs...)
}

// attributeEndpoint tells the NOC that e went unresponsive.
func (s *Service) attributeEndpoint(ctx context.Context, e store.Endpoint) {
	if r := s.rootCauseSink(); r != nil {
		r.AttributeHost(ctx, RootCausePrefix+e.Hostname, s.endpointHosts(ctx, e))
	}
}

// releaseEndpoint tells the NOC that e is back (or revoked).
func (s *Service) releaseEndpoint(ctx context.Context, e store.Endpoint) {
	if r := s.rootCauseSink(); r != nil {
		r.ReleaseHost(ctx, RootCausePrefix+e.Hostname, s.endpointHosts(ctx, e))
	}
}
