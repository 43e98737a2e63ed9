package web

import "net/http"

func (s *server) registerResponse(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
}
