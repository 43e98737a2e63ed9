package ui

import "net/http"

func (u *UI) responseRoutes(m *http.ServeMux) {}
