package ui

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nocsoc/nocsoc/internal/check"
)

// browser starts a headless Chromium for the test. Without one the test
// is skipped, except under CI=true, where a missing browser is a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install -y chromium); browser tests are required in CI")
		}
		t.Skip("chromium is not installed (apt-get install -y chromium): skipping the browser test")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium reaches out to Google's servers, and
		// the network here is closed.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	return ctx
}

// shots returns where screenshots go: $NOCSOC_SCREENSHOTS when set (to
// keep and look at them), else the test's temp dir.
func shots(t *testing.T) string {
	if d := os.Getenv("NOCSOC_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func TestBrowser(t *testing.T) {
	bctx := browser(t)
	e := newEnv(t)
	dir := shots(t)
	base := e.srv.URL

	// Start the browser on the untimed context (it lives as long as the
	// context of the first call), then bound the steps.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	// Collect CSP violations, script errors and exceptions that the browser
	// reports on its console.
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

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
		})
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
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
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}

	do("login page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(css(`input[name=name]`)), shot("01-login"))
	do("sign in as operator", login("operator"), chromedp.WaitVisible(css(`#live.on`)), shot("02-noc-wall-up"))

	// The check turns red live: no reload (the marker survives), only the
	// event stream and the wall's own refresh.
	eval("mark page", `window.__marker = "still here"`)
	e.web.Close()
	e.runAndWait("web", check.StateDown)
	do("tile turns red",
		chromedp.WaitVisible(css(`.tile.st-down[data-check="web"]`)),
		chromedp.WaitVisible(css(`.roots .tile[data-check="web"]`)),
		shot("03-noc-wall-down"))
	if m := eval("read marker", `window.__marker || ""`); m != "still here" {
		t.Fatalf("the page reloaded (marker %q)", m)
	}

	do("check page as operator", chromedp.Navigate(base+"/checks/web"), chromedp.WaitVisible(css(`.chart`)), shot("04-check-detail"))
	if n := eval("count buttons", `document.querySelectorAll('#run-now, #edit-check').length`); n != float64(2) {
		t.Errorf("operator sees %v of the 2 action buttons", n)
	}
	do("run now", chromedp.Click(css(`#run-now`)), chromedp.WaitVisible(css(`.flash`)))
	do("edit page", chromedp.Navigate(base+"/checks/web/edit"), chromedp.WaitVisible(css(`input[name=interval]`)), shot("05-check-edit"))
	do("password page", chromedp.Navigate(base+"/account/password"), chromedp.WaitVisible(css(`input[name=current]`)), shot("06-password"))
	do("sign out", chromedp.Click(css(`button.link`)), chromedp.WaitVisible(css(`form.login`)))

	// A viewer sees no buttons, and a POST without the token is refused.
	do("viewer", login("viewer"), chromedp.Navigate(base+"/checks/web"), chromedp.WaitVisible(css(`.chart`)),
		shot("07-check-detail-viewer"))
	if n := eval("count viewer buttons", `document.querySelectorAll('#run-now, #edit-check').length`); n != float64(0) {
		t.Errorf("viewer sees %v action buttons", n)
	}
	if st := eval("forged POST", `fetch('/checks/web/run', {method: 'POST', credentials: 'same-origin'}).then(r => r.status)`); st != float64(403) {
		t.Errorf("forged POST from the page: status %v, want 403", st)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		// The refused forged POST is logged by the browser as a failed load.
		if strings.Contains(p, "403") {
			continue
		}
		t.Errorf("browser console: %s", p)
	}
	t.Logf("screenshots in %s", dir)
}
