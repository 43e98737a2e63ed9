package web

import "net/http"

func (s *server) registerCompliance(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
}
