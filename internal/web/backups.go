package web

import "net/http"

func (s *server) registerBackups(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
}
