package ui

import "net/http"

func (u *UI) endpointRoutes(m *http.ServeMux) {}
