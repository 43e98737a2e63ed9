package web

import "net/http"

func (s *server) registerJobs(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {}
