package ui

import (
	"net/http"

	"github.com/nocsoc/nocsoc/internal/auth"
)

// opsRoutes registers the Investigate, Rules, Operations metrics, On-call
// and Admin pages with the role each needs.
func (u *UI) opsRoutes(m *http.ServeMux) {
	m.Handle("GET /investigate", u.authed(auth.RoleViewer, u.investigatePage))
	m.Handle("GET /investigate/export", u.authed(auth.RoleViewer, u.exportEvents))
	m.Handle("GET /investigate/pivot", u.authed(auth.RoleViewer, u.pivotPage))

	m.Handle("GET /rules", u.authed(auth.RoleViewer, u.rulesPage))
	m.Handle("GET /rules/{id}", u.authed(auth.RoleViewer, u.rulePage))
	m.Handle("POST /rules/{id}/{action}", u.authed(auth.RoleOperator, u.setRuleState))

	m.Handle("GET /ops", u.authed(auth.RoleViewer, u.opsPage))
	m.Handle("GET /oncall", u.authed(auth.RoleViewer, u.oncallPage))

	m.Handle("GET /admin", u.authed(auth.RoleAdmin, func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
		return nil
	}))
	m.Handle("GET /admin/{tab}", u.authed(auth.RoleAdmin, u.adminPage))
	m.Handle("POST /admin/users", u.authed(auth.RoleAdmin, u.createUser))
	m.Handle("POST /admin/users/{id}/{action}", u.authed(auth.RoleAdmin, u.userAction))
	m.Handle("POST /admin/tokens", u.authed(auth.RoleAdmin, u.createToken))
	m.Handle("POST /admin/tokens/{id}/revoke", u.authed(auth.RoleAdmin, u.revokeToken))
	m.Handle("POST /admin/channels/{name}/test", u.authed(auth.RoleAdmin, u.testChannel))
	m.Handle("POST /admin/integrations", u.authed(auth.RoleAdmin, u.createIntegration))
	m.Handle("POST /admin/integrations/{id}/disable", u.authed(auth.RoleAdmin, u.disableIntegration))
}
