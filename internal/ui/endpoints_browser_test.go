package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/store"
)

// TestBrowserEndpointsAndDecisions opens the endpoint list, follows an
// endpoint to its detail (health sparklines, inventory), then revokes an
// active decision on the decisions page, with no CSP violation or script
// error on the way; a viewer sees no revoke button.
func TestBrowserEndpointsAndDecisions(t *testing.T) {
	bctx := browser(t)
	e := newFleetEnv(t)
	dir := shots(t)
	base := e.srv.URL
	now := time.Now().UTC()
	d, err := e.st.CreateDecision(context.Background(), store.Actor{Name: "operator"}, decision.Decision{Type: "ban", Scope: "ip",
		Value: "203.0.113.66", Endpoints: []string{e.web1}, Reason: "brute force", Origin: decision.OriginPerson, OriginRef: "operator",
		CreatedAt: now, Until: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	var mu sync.Mutex
	var problems []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
		})
	}
	login := func(user string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(css(`input[name=name]`)),
			chromedp.SendKeys(css(`input[name=name]`), user),
			chromedp.SendKeys(css(`input[name=password]`), passwords[user]),
			chromedp.Submit(css(`input[name=password]`)),
			chromedp.WaitVisible(css(`.tile[data-check="web"]`)),
		)
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	eval := func(step, expr string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}

	do("sign in as operator", login("operator"))
	do("endpoints list", chromedp.Click(css(`nav a[href="/endpoints"]`)), chromedp.WaitVisible(css(`#endpoints`)), shot("30-endpoints"))
	if n := eval("rows", `document.querySelectorAll('#endpoints tr[data-endpoint]').length`); n != float64(2) {
		t.Errorf("endpoint list shows %v rows, want 2", n)
	}
	do("endpoint detail", chromedp.Click(css(`tr[data-endpoint="`+e.web1+`"] a.endpoint-link`)),
		chromedp.WaitVisible(css(`#health svg.spark polyline`)), chromedp.WaitVisible(css(`#packages`)), shot("31-endpoint"))
	if v := eval("name", `document.getElementById('endpoint-name').textContent`); v != "web1" {
		t.Errorf("detail opened for %v", v)
	}
	do("package search", chromedp.SendKeys(css(`#pkg-search input[name=pkg]`), "openssl"), chromedp.Submit(css(`#pkg-search input[name=pkg]`)),
		// The old page has three rows: wait for the answer's one.
		chromedp.WaitVisible(css(`#packages tbody tr:only-child`)))
	if v := eval("packages", `document.querySelectorAll('#packages tbody tr').length`); v != float64(1) {
		t.Errorf("package search shows %v rows, want 1", v)
	}

	do("decisions", chromedp.Click(css(`nav a[href="/decisions"]`)), chromedp.WaitVisible(css(`#active-decisions tr[data-decision]`)), shot("32-decisions"))
	// The revoke form asks for confirmation (console.js); accept it.
	eval("accept confirm", `window.confirm = function () { return true; }; true`)
	do("revoke", chromedp.Click(css(`#active-decisions tr[data-decision] button.revoke`)), chromedp.WaitVisible(css(`.flash`)),
		chromedp.WaitVisible(css(`#decision-history tr[data-decision]`)), shot("33-decision-revoked"))
	if v := eval("flash", `document.querySelector('.flash').textContent`); !strings.Contains(v.(string), "revoked") {
		t.Errorf("flash after revoke: %v", v)
	}
	got, err := e.st.GetDecision(context.Background(), d.ID)
	if err != nil || got.RevokedBy != "operator" {
		t.Errorf("decision after revoke: %+v, %v", got, err)
	}
	do("sign out", chromedp.Click(css(`button.link`)), chromedp.WaitVisible(css(`form.login`)))

	do("viewer", login("viewer"), chromedp.Navigate(base+"/decisions"), chromedp.WaitVisible(css(`#decision-history`)))
	if n := eval("viewer buttons", `document.querySelectorAll('button.revoke, #new-decision').length`); n != float64(0) {
		t.Errorf("viewer sees %v decision controls", n)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser console: %s", p)
	}
	t.Logf("screenshots in %s", dir)
}
