package ui

import "net/http"

func (u *UI) complianceRoutes(m *http.ServeMux) {}
