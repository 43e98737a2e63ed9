package ui

import (
	"net/http"

	"github.com/nocsoc/nocsoc/internal/auth"
)

// routes registers every console path. Each page declares the role it
// needs here, in one place; templates hide what the role may not do, and
// this table refuses it anyway.
func (u *UI) routes() {
	m := http.NewServeMux()
	m.Handle("GET /static/", u.assets)
	m.Handle("GET /login", u.handle(u.loginPage))
	m.Handle("POST /login", u.handle(u.login))
	m.Handle("POST /logout", u.authed(auth.RoleViewer, u.logout))
	m.Handle("GET /account/password", u.authed(auth.RoleViewer, u.passwordPage))
	m.Handle("POST /account/password", u.authed(auth.RoleViewer, u.changePassword))

	m.Handle("GET /events/stream", u.authed(auth.RoleViewer, u.hub.serveStream))

	m.Handle("GET /noc", u.authed(auth.RoleViewer, u.wallPage))
	m.Handle("GET /noc/wall", u.authed(auth.RoleViewer, u.wallFragment))
	m.Handle("GET /checks/{name}", u.authed(auth.RoleViewer, u.checkPage))
	m.Handle("POST /checks/{name}/run", u.authed(auth.RoleOperator, u.runCheck))
	m.Handle("GET /checks/{name}/edit", u.authed(auth.RoleOperator, u.editCheckPage))
	m.Handle("POST /checks/{name}/edit", u.authed(auth.RoleOperator, u.editCheck))
	u.socRoutes(m)        // SOC queue and incidents (soc.go)
	u.opsRoutes(m)        // investigate, rules, metrics, on-call, admin (ops_routes.go)
	u.endpointRoutes(m)   // endpoints, patches, software, jobs, backups (endpoints.go)
	u.complianceRoutes(m) // compliance (compliance.go)
	u.responseRoutes(m)   // decisions and approvals (response.go)

	m.Handle("GET /{$}", u.authed(auth.RoleViewer, func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, "/noc", http.StatusSeeOther)
		return nil
	}))
	// Everything else under the console is a 404 page, not the mux's
	// plain-text one.
	m.Handle("/", u.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "No such page.")
	}))
	u.mux = m
}
