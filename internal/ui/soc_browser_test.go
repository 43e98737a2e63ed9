package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// TestBrowserSOC drives the SOC queue and the incident page in Chromium:
// acknowledge with the keyboard (j then a), a live new alert, a NOC→SOC
// hand-off with a note, and a viewer who cannot act.
func TestBrowserSOC(t *testing.T) {
	bctx := browser(t)
	e := newEnv(t)
	dir := shots(t)
	base := e.srv.URL
	o1 := e.fire("disk full on db1", alert.TeamNOC, "high", map[string]string{"host": "db1"})
	e.fire("ssh brute force from 10.0.0.9", alert.TeamSOC, "critical", map[string]string{"source_ip": "10.0.0.9"})

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

	do("operator queue", login("operator"), chromedp.Navigate(base+"/soc"), chromedp.WaitVisible(css(`#live.on`)),
		chromedp.WaitVisible(css(`tr.alert-row`)), shot("11-soc-queue"))
	// A new alert appears live, without a reload.
	eval("mark page", `window.__marker = "still here"`)
	o3 := e.fire("malware beacon on ws7", alert.TeamSOC, "high", map[string]string{"host": "ws7"})
	do("live alert", chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-id="%d"]`, o3.AlertID))))
	if m := eval("read marker", `window.__marker || ""`); m != "still here" {
		t.Fatalf("the queue reloaded (marker %q)", m)
	}
	// Rows are newest first: j j j selects the third row, the first alert.
	sel := fmt.Sprintf(`tr.alert-row[data-id="%d"]`, o1.AlertID)
	do("keyboard select", chromedp.KeyEvent("jjj"), chromedp.WaitVisible(css(sel+`.sel`)), shot("12-soc-selected"))
	do("keyboard ack", chromedp.KeyEvent("a"), chromedp.WaitVisible(css(`.flash`)),
		chromedp.WaitVisible(css(sel+` .chip.ack`)), shot("13-soc-acked"))
	if f := eval("flash", `document.querySelector('.flash').textContent`); f != "Acknowledged 1 alert(s)." {
		t.Errorf("flash %q", f)
	}

	// Hand the NOC incident to the SOC with a note.
	inc := fmt.Sprintf("%s/incidents/%d", base, o1.IncidentID)
	do("incident page", chromedp.Navigate(inc), chromedp.WaitVisible(css(`#handoff`)), shot("14-incident-noc"))
	if tm := eval("team", `document.getElementById('inc-team').textContent`); tm != "noc" {
		t.Fatalf("team %v before the hand-off", tm)
	}
	do("hand off", chromedp.SendKeys(css(`#handoff-note`), "source IP is on a threat list; please look"),
		chromedp.Click(css(`#handoff-submit`)), chromedp.WaitVisible(css(`.flash`)),
		chromedp.WaitVisible(css(`.timeline .tl-handoff`)), shot("15-incident-handed-off"))
	if tm := eval("team", `document.getElementById('inc-team').textContent`); tm != "soc" {
		t.Errorf("team %v after the hand-off, want soc", tm)
	}
	if tl := eval("timeline", `document.querySelector('.timeline .tl-handoff').textContent`); !strings.Contains(fmt.Sprint(tl), "handed from noc to soc: source IP is on a threat list") {
		t.Errorf("timeline entry %q", tl)
	}
	do("board", chromedp.Navigate(base+"/incidents"), chromedp.WaitVisible(css(`.board`)), shot("16-incident-board"))
	do("sign out", chromedp.Navigate(base+"/soc"), chromedp.Click(css(`button.link`)), chromedp.WaitVisible(css(`form.login`)))

	// A viewer sees no actions, the keys do nothing, and a POST is 403.
	do("viewer queue", login("viewer"), chromedp.Navigate(base+"/soc"), chromedp.WaitVisible(css(`tr.alert-row`)),
		chromedp.KeyEvent("ja"), shot("17-soc-viewer"))
	if n := eval("viewer controls", `document.querySelectorAll('#queue, input[name=ids], form[action^="/incidents"]').length`); n != float64(0) {
		t.Errorf("viewer sees %v action controls", n)
	}
	do("viewer incident", chromedp.Navigate(inc), chromedp.WaitVisible(css(`#timeline`)), shot("18-incident-viewer"))
	if n := eval("viewer buttons", `document.querySelectorAll('main form').length`); n != float64(0) {
		t.Errorf("viewer sees %v forms on the incident", n)
	}
	csrf := eval("csrf", `document.querySelector('input[name=csrf]').value`)
	st := eval("viewer POST", fmt.Sprintf(`fetch('/incidents/%d/status', {method: 'POST', credentials: 'same-origin',
		headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'to=resolved&csrf=%s'}).then(r => r.status)`, o1.IncidentID, csrf))
	if st != float64(403) {
		t.Errorf("viewer POST with a valid token: status %v, want 403", st)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		if strings.Contains(p, "403") {
			continue
		}
		t.Errorf("browser console: %s", p)
	}
	t.Logf("screenshots in %s", dir)
}
