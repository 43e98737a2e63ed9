package web

import "net/http"

func (s *server) registerFleetOps(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
}
