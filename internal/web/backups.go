package web

import (
	"net/http"
	"strconv"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/store"
)

// registerBackups adds backup jobs, their runs and status board, and the
// file integrity states of endpoints.
func (s *server) registerBackups(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
	if s.fleet == nil {
		return
	}
	route("GET /api/v1/backups", auth.RoleViewer, s.listBackupJobs)
	route("POST /api/v1/backups", auth.RoleOperator, s.createBackupJob)
	route("GET /api/v1/backups/status", auth.RoleViewer, s.backupBoard)
	route("GET /api/v1/backups/{id}", auth.RoleViewer, s.getBackupJob)
	route("PUT /api/v1/backups/{id}", auth.RoleOperator, s.updateBackupJob)
	route("DELETE /api/v1/backups/{id}", auth.RoleOperator, s.deleteBackupJob)
	route("GET /api/v1/backups/{id}/runs", auth.RoleViewer, s.backupRuns)
	route("GET /api/v1/endpoints/{id}/files", auth.RoleViewer, s.endpointFiles)
}

// backupJobInput is what an operator sends; the server sets the rest.
type backupJobInput struct {
	Name        string         `json:"name"`
	EndpointID  string         `json:"endpoint_id"`
	Schedule    string         `json:"schedule"`
	TimeZone    string         `json:"timezone"`
	Grace       check.Duration `json:"grace"`
	MinDuration check.Duration `json:"min_duration"`
	MinBytes    int64          `json:"min_bytes"`
	MaxSizeDrop float64        `json:"max_size_drop"`
	Severity    string         `json:"severity"`
}

func (in backupJobInput) job(id int64) store.BackupJob {
	return store.BackupJob{ID: id, Name: in.Name, EndpointID: in.EndpointID, Schedule: in.Schedule, TimeZone: in.TimeZone,
		Grace: in.Grace, MinDuration: in.MinDuration, MinBytes: in.MinBytes, MaxSizeDrop: in.MaxSizeDrop, Severity: in.Severity}
}

func (s *server) listBackupJobs(w http.ResponseWriter, r *http.Request, p principal) error {
	jobs, err := s.fleet.BackupJobs(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": nonNil(jobs)})
	return nil
}

func (s *server) createBackupJob(w http.ResponseWriter, r *http.Request, p principal) error {
	var in backupJobInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	j, err := s.fleet.CreateBackupJob(r.Context(), p.actor(), in.job(0))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, j)
	return nil
}

func (s *server) getBackupJob(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	j, err := s.fleet.BackupJob(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *server) updateBackupJob(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var in backupJobInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	j, err := s.fleet.UpdateBackupJob(r.Context(), p.actor(), in.job(id))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *server) deleteBackupJob(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	j, err := s.fleet.DeleteBackupJob(r.Context(), p.actor(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": j})
	return nil
}

func (s *server) backupRuns(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit", "limit: %q is not an integer from 1 to 1000", v)
		}
		limit = n
	}
	runs, err := s.fleet.BackupRuns(r.Context(), id, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"job_id": id, "runs": nonNil(runs)})
	return nil
}

func (s *server) backupBoard(w http.ResponseWriter, r *http.Request, p principal) error {
	board, err := s.fleet.BackupBoard(r.Context())
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, b := range board {
		counts[b.State]++
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": board, "counts": counts})
	return nil
}

func (s *server) endpointFiles(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("id")
	files, err := s.fleet.FileStates(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": id, "files": nonNil(files)})
	return nil
}
