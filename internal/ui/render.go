package ui

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/store"
)

// pageTemplate is one page: the shared layout and partials plus the page's
// own file, parsed together so every page can override the layout's blocks
// without clashing with the others.
type pageTemplate struct {
	t *template.Template
}

// parsePages parses templates/layout.html and templates/partials/*.html
// with every other templates/*.html, one template set per page, keyed by
// the page's file name without extension ("noc", "check").
func parsePages(fsys fs.FS, funcs template.FuncMap) (map[string]*pageTemplate, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(fsys, "templates/layout.html", "templates/partials/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	names, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*pageTemplate{}
	for _, n := range names {
		if path.Base(n) == "layout.html" {
			continue
		}
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if t, err = t.ParseFS(fsys, n); err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		pages[strings.TrimSuffix(path.Base(n), ".html")] = &pageTemplate{t: t}
	}
	return pages, nil
}

// Page is what every page template receives. Handlers fill Title, Nav and
// Data; render fills the rest.
type Page struct {
	Title string
	// Nav names the active navigation entry ("noc", "account").
	Nav string
	// User is the signed-in user; nil on the login page.
	User *store.User
	// CSRF is the token every form posts back as the "csrf" field.
	CSRF string
	// Live makes the page open the event stream (data-live on <body>).
	Live bool
	// Flash is a one-line notice shown above the content; Error an error.
	Flash, Error string
	Data         any
	Now          time.Time
}

// Can reports whether the page's user has at least the role need; pages
// use it to hide buttons the user could not use.
func (p Page) Can(need string) bool {
	return p.User != nil && auth.Allows(p.User.Role, need)
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p Page) error {
	return u.renderTemplate(w, r, status, name, "layout.html", p)
}

// renderTemplate executes one named template of a page set (a whole page
// through "layout.html", or a fragment such as "wall").
func (u *UI) renderTemplate(w http.ResponseWriter, r *http.Request, status int, page, tmpl string, p Page) error {
	pt, ok := u.pages[page]
	if !ok {
		return fmt.Errorf("render: no page %q", page)
	}
	if s := sessionFrom(r); s != nil {
		p.User, p.CSRF = &s.user, s.sess.CSRF
	}
	p.Now = u.now()
	var buf bytes.Buffer
	if err := pt.t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		return fmt.Errorf("render %s: %w", page, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// httpError is an error with the status and client-safe message to show;
// the wrapped error is only logged.
type httpError struct {
	status int
	msg    string
	err    error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// handlerFunc is a console handler: it returns an error instead of writing
// one, and handle turns it into an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (u *UI) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			u.fail(w, r, err)
		}
	})
}

func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	he := &httpError{status: http.StatusInternalServerError, msg: "Something went wrong; the error was logged."}
	var e *httpError
	if errors.As(err, &e) {
		he = e
	}
	if he.status >= 500 {
		u.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p := Page{Title: http.StatusText(he.status), Error: he.msg, Data: he.status}
	if rerr := u.render(w, r, he.status, "error", p); rerr != nil {
		u.log.Error("render error page", "err", rerr)
		http.Error(w, he.msg, he.status)
	}
}
