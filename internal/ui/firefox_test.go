package ui

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// firefoxPrefs keep a headless Firefox quiet and on loopback: no
// telemetry, updates, remote settings or safe-browsing lists, and every
// non-loopback request sent to a closed loopback port (Firefox never
// proxies localhost), so nothing leaves the machine.
const firefoxPrefs = `
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.blockedURIs.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.region.network.url", "");
user_pref("browser.region.update.enabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.unified", false);
user_pref("extensions.update.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.blocklist.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
user_pref("dom.push.enabled", false);
user_pref("media.gmp-manager.url", "");
user_pref("network.proxy.type", 1);
user_pref("network.proxy.http", "127.0.0.1");
user_pref("network.proxy.http_port", 9);
user_pref("network.proxy.ssl", "127.0.0.1");
user_pref("network.proxy.ssl_port", 9);
user_pref("network.proxy.allow_hijacking_localhost", false);
`

var hashedAssetRE = regexp.MustCompile(`(?:href|src)="(/static/[^"]+\.(?:css|js))"`)

// TestFirefoxLoadsLoginPage renders the login page in Debian's firefox-esr
// (chromedp cannot drive Firefox, so it takes a headless screenshot), and
// checks that the screenshot is not blank and that Firefox fetched the
// page's content-hashed stylesheet and script: the CSP-strict page loads
// in Firefox. Skipped without firefox-esr, except under CI=true.
func TestFirefoxLoadsLoginPage(t *testing.T) {
	ff, err := exec.LookPath("firefox-esr")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("firefox-esr is not installed (apt-get install -y firefox-esr); the Firefox test is required in CI")
		}
		t.Skip("firefox-esr is not installed (apt-get install -y firefox-esr): skipping the Firefox test")
	}
	e := newEnv(t)
	// Record what the browser fetches, in front of the real console.
	var (
		mu   sync.Mutex
		seen = map[string]string{} // path -> User-Agent
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.UserAgent()
		mu.Unlock()
		e.ui.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, body := e.get(e.client(), "/login")
	var assets []string
	for _, m := range hashedAssetRE.FindAllStringSubmatch(body, -1) {
		assets = append(assets, m[1])
	}
	if len(assets) < 2 {
		t.Fatalf("login page names %d content-hashed CSS/JS assets, want both:\n%s", len(assets), body)
	}

	dir := t.TempDir()
	home, profile := filepath.Join(dir, "home"), filepath.Join(dir, "profile")
	for _, d := range []string{home, profile} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs), 0o600); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(shots(t), "firefox-login.png")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ff, "--headless", "-profile", profile, "-no-remote",
		"--window-size=1280,800", "--screenshot", shot, srv.URL+"/login")
	cmd.Env = append(os.Environ(), "HOME="+home, "MOZ_HEADLESS=1", "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("firefox-esr: %v\n%s", err, out.String())
	}
	took := time.Since(start)
	t.Logf("firefox-esr took %s for the screenshot", took.Round(time.Millisecond))
	if took > time.Minute {
		t.Logf("NOTE: Firefox's start-up made this test take over 60 s")
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out.String())
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if n := colours(img, 64); n < 3 {
		t.Errorf("screenshot looks blank: %d colours (%v)", n, img.Bounds())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range assets {
		ua, ok := seen[a]
		switch {
		case !ok:
			t.Errorf("Firefox did not fetch %s (fetched %v)", a, keys(seen))
		case !strings.Contains(ua, "Firefox"):
			t.Errorf("%s fetched by %q, not Firefox", a, ua)
		}
	}
}

// colours counts the distinct colours in img, stopping at limit.
func colours(img image.Image, limit int) int {
	set := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			set[[4]uint32{r, g, bl, a}] = true
			if len(set) >= limit {
				return len(set)
			}
		}
	}
	return len(set)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
