package web

import (
	"net/http"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/fleet"
)

// registerFleetOps adds the read-only API of the operations over agent
// data: storage forecasts and threshold rule states. The rules come from
// the config file (endpoints: thresholds:), so nothing here changes state.
func (s *server) registerFleetOps(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
	if s.fleet == nil {
		return
	}
	route("GET /api/v1/endpoints/{id}/forecast", auth.RoleViewer, s.endpointForecast)
	route("GET /api/v1/endpoints/{id}/thresholds", auth.RoleViewer, s.endpointThresholds)
	route("GET /api/v1/thresholds", auth.RoleViewer, s.listThresholds)
}

func (s *server) endpointForecast(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("id")
	fs, err := s.fleet.Forecasts(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": id, "forecasts": fs})
	return nil
}

func (s *server) endpointThresholds(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("id")
	st, err := s.fleet.ThresholdStates(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": id, "states": st})
	return nil
}

func (s *server) listThresholds(w http.ResponseWriter, r *http.Request, p principal) error {
	st, err := s.fleet.ThresholdStates(r.Context(), "")
	if err != nil {
		return err
	}
	type ruleJSON struct {
		fleet.ThresholdRule
		For string `json:"for"`
	}
	rules := []ruleJSON{}
	for _, r := range s.fleet.Thresholds() {
		rules = append(rules, ruleJSON{ThresholdRule: r, For: r.For.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rules, "states": st})
	return nil
}
