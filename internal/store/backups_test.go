package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/check"
)

func bkEndpoint(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx := context.Background()
	tok, cred := strings.Repeat("a", 64), strings.Repeat("b", 64)
	if _, err := s.CreateEnrollmentToken(ctx, admin, EnrollmentToken{Hash: tok, Prefix: "nse_x", ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnrollEndpoint(ctx, tok, Endpoint{ID: id, CredentialHash: cred, Hostname: "db1"}, t0); err != nil {
		t.Fatal(err)
	}
}

func TestBackupJobsStore(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	bkEndpoint(t, s, "ep1")
	before := auditCount(t, s)
	j, err := s.CreateBackupJob(ctx, admin, BackupJob{Name: "pg", EndpointID: "ep1", Schedule: "@daily", Grace: check.Duration(time.Hour),
		MinBytes: 10, MaxSizeDrop: 0.5, Severity: "high"})
	if err != nil {
		t.Fatal(err)
	}
	if j.ID == 0 || j.CreatedBy != "admin" || !j.CreatedAt.Equal(t0) {
		t.Errorf("created = %+v", j)
	}
	if _, err := s.CreateBackupJob(ctx, admin, BackupJob{Name: "pg", EndpointID: "ep1", Schedule: "@daily", Severity: "high"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	var fe *FieldError
	if _, err := s.CreateBackupJob(ctx, admin, BackupJob{Name: "x", EndpointID: "nope", Schedule: "@daily", Severity: "high"}); !errors.As(err, &fe) || fe.Field != "endpoint_id" {
		t.Errorf("unknown endpoint: %v", err)
	}
	if _, err := s.CreateBackupJob(ctx, admin, BackupJob{Name: "x", EndpointID: "ep1", Schedule: "@daily", Severity: "high", MaxSizeDrop: 1}); !errors.As(err, &fe) || fe.Field != "max_size_drop" {
		t.Errorf("max_size_drop 1: %v", err)
	}
	missed := t0.Add(-time.Hour)
	if err := s.SetBackupMissed(ctx, j.ID, &missed); err != nil {
		t.Fatal(err)
	}
	j.Schedule = "0 3 * * *"
	u, err := s.UpdateBackupJob(ctx, admin, j)
	if err != nil {
		t.Fatal(err)
	}
	if u.Schedule != "0 3 * * *" || u.MissedSince != nil || !u.CreatedAt.Equal(t0) {
		t.Errorf("updated = %+v", u)
	}
	got, err := s.BackupJobByName(ctx, "ep1", "pg")
	if err != nil || got.Schedule != "0 3 * * *" || got.Grace.D() != time.Hour || got.MissedSince != nil {
		t.Errorf("by name = %+v, %v", got, err)
	}
	if _, err := s.DeleteBackupJob(ctx, admin, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BackupJob(ctx, j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if n := auditCount(t, s) - before; n != 3 {
		t.Errorf("audit entries = %d, want create, update, delete", n)
	}
}

func TestBackupRunsStore(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	run := func(id string, start time.Time, exit int, bytes int64) BackupRun {
		return BackupRun{EndpointID: "ep1", ReceivedAt: t0, BackupRun: agentproto.BackupRun{RunID: id, Job: "pg", StartedAt: start,
			EndedAt: start.Add(time.Minute), ExitCode: exit, DurationMS: 60000, Bytes: bytes, BytesSource: agentproto.BytesFromSize}}
	}
	for i, r := range []BackupRun{run("r1", t0, 0, 100), run("r2", t0.Add(time.Hour), 1, 0), run("r3", t0.Add(2*time.Hour), 0, 90)} {
		if i == 1 {
			r.Problems = []string{"failed"}
		}
		ok, err := s.InsertBackupRun(ctx, r)
		if err != nil || !ok {
			t.Fatalf("insert %s: %v %v", r.RunID, ok, err)
		}
	}
	if ok, err := s.InsertBackupRun(ctx, run("r1", t0, 0, 100)); err != nil || ok {
		t.Errorf("replayed run inserted: %v %v", ok, err)
	}
	all, err := s.BackupRuns(ctx, BackupRunFilter{EndpointID: "ep1", Job: "pg"})
	if err != nil || len(all) != 3 || all[0].RunID != "r3" || all[1].Problems[0] != "failed" || len(all[0].Problems) != 0 {
		t.Fatalf("runs = %+v, %v", all, err)
	}
	prev, err := s.BackupRuns(ctx, BackupRunFilter{EndpointID: "ep1", Job: "pg", Succeeded: true, Before: t0.Add(2 * time.Hour), ExcludeRunID: "r3", Limit: 1})
	if err != nil || len(prev) != 1 || prev[0].RunID != "r1" {
		t.Errorf("previous success = %+v, %v", prev, err)
	}
}

func TestFileStatesAndMailPosture(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	m, err := s.FileStates(ctx, "ep1")
	if err != nil || len(m) != 0 {
		t.Fatalf("empty: %v %v", m, err)
	}
	f := agentproto.FileState{Path: "/etc/passwd", Exists: true, SHA256: strings.Repeat("c", 64), Size: 5, Mode: 0o644, UID: 0, GID: 0, MTime: t0}
	if err := s.SaveFileStates(ctx, "ep1", []agentproto.FileState{f, {Path: "/etc/sudoers"}}, t0); err != nil {
		t.Fatal(err)
	}
	f.Mode = 0o666
	if err := s.SaveFileStates(ctx, "ep1", []agentproto.FileState{f}, t0); err != nil {
		t.Fatal(err)
	}
	m, err = s.FileStates(ctx, "ep1")
	if err != nil || len(m) != 2 || m["/etc/passwd"].Mode != 0o666 || !m["/etc/passwd"].MTime.Equal(t0) || m["/etc/sudoers"].Exists {
		t.Fatalf("states = %+v, %v", m, err)
	}

	if _, err := s.MailPostureState(ctx, "mail"); !errors.Is(err, ErrNotFound) {
		t.Errorf("none yet: %v", err)
	}
	if err := s.SaveMailPosture(ctx, MailPosture{Check: "mail", Fingerprint: "fp1", Records: "MX 10 mx", SeenAt: t0, ChangedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveMailPosture(ctx, MailPosture{Check: "mail", Fingerprint: "fp2", Records: "MX 10 mx2", SeenAt: t0, ChangedAt: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.MailPostureState(ctx, "mail")
	if err != nil || got.Fingerprint != "fp2" || got.Records != "MX 10 mx2" {
		t.Errorf("mail posture = %+v, %v", got, err)
	}
}
