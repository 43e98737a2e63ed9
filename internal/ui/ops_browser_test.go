package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserInvestigate searches on Investigate, follows a pivot link to
// the entity's timeline, and checks that a viewer gets no admin pages and
// no action buttons.
func TestBrowserInvestigate(t *testing.T) {
	bctx := browser(t)
	e := newEnv(t)
	e.seedEvents()
	dir := shots(t)
	base := e.srv.URL
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
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
	do("search", chromedp.Navigate(base+"/investigate"), chromedp.WaitVisible(css(`#q`)),
		chromedp.SendKeys(css(`#q`), "user.name:root"), chromedp.Submit(css(`#q`)),
		chromedp.WaitVisible(css(`#results a.pivot.chip`)), shot("10-investigate"))
	do("follow pivot", chromedp.Click(css(`#results a.pivot.chip`)), chromedp.WaitVisible(css(`#pivot-timeline`)), shot("11-pivot"))
	if v := eval("pivot value", `document.getElementById('pivot-value').textContent`); v != "203.0.113.7" {
		t.Errorf("pivot opened for %v", v)
	}
	do("syntax error", chromedp.Navigate(base+"/investigate?q=%28oops"), chromedp.WaitVisible(css(`#query-error`)), shot("12-query-error"))
	do("rules", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(css(`#rules`)), shot("13-rules"))
	do("ops", chromedp.Navigate(base+"/ops"), chromedp.WaitVisible(css(`#service-uptime`)), shot("14-ops"))
	do("oncall", chromedp.Navigate(base+"/oncall"), chromedp.WaitVisible(css(`#oncall-now`)), shot("15-oncall"))
	do("sign out", chromedp.Click(css(`button.link`)), chromedp.WaitVisible(css(`form.login`)))

	do("sign in as admin", login("admin"), chromedp.Navigate(base+"/admin/users"), chromedp.WaitVisible(css(`#users`)), shot("16-admin-users"))
	do("sign out", chromedp.Click(css(`button.link`)), chromedp.WaitVisible(css(`form.login`)))

	do("viewer", login("viewer"))
	do("admin page as viewer", chromedp.Navigate(base+"/admin/users"), chromedp.WaitVisible(css(`.error`)), shot("17-admin-viewer"))
	if v := eval("403 page", `document.querySelector('.error').textContent`); !strings.Contains(v.(string), "needs admin") {
		t.Errorf("viewer on /admin/users saw %q", v)
	}
	if n := eval("users table", `document.querySelectorAll('#users').length`); n != float64(0) {
		t.Error("viewer sees the users table")
	}
	do("rules as viewer", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(css(`#rules`)))
	if n := eval("viewer buttons", `document.querySelectorAll('.rule-toggle, a[href="/admin/users"]').length`); n != float64(0) {
		t.Errorf("viewer sees %v action buttons or admin links", n)
	}
	t.Logf("screenshots in %s", dir)
}
