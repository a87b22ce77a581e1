package lab

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seesawlb/seesaw/deploy/browsertest"
)

// demoScreenshotEnv names the file the demo's browser test writes its
// screenshot to; by default it goes to the test's temporary directory.
const demoScreenshotEnv = "DEMO_SCREENSHOT"

// demoPageInBrowser loads the demo's status page (lb1's ECU, forwarded to
// base on the host) in a real browser and checks what a visitor of make
// demo sees: the sample cluster's two vservers, the broken one (dns, whose
// backends the lab does not run) on top; lb1 as this node with the HA state
// its ECU reports; web's four destinations (two backends, IPv4 and IPv6)
// healthy and dns's four unhealthy; the backends and their checks. It keeps
// a full-page screenshot (DEMO_SCREENSHOT names the file) and checks that
// the page requested nothing from another host. get fetches a path of the
// same ECU from Go.
func demoPageInBrowser(t *testing.T, base string, get func(path string) (int, string, error)) {
	// A laptop's window (the screenshot's width); a deadline for the
	// whole session, so a hang fails the test instead of blocking the
	// guest.
	ctx := browsertest.Start(t, 1200, 900, 4*time.Minute)
	reqs := browsertest.Record(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("chromium: load %s/: %v", base, err)
	}

	// Under emulation the restarted node's checks take a while: the
	// page's own updates bring them, so the waits poll the page.
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(3*time.Minute))); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("the demo's page in chromium: %s: %v\n%s", what, err, html)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("the demo's page in chromium: %s: %v", expr, err)
		}
		return s
	}

	poll("the sample's two vservers rendered", `document.querySelectorAll("tbody.vserver").length === 2`)
	// web@example's IPv4 and IPv6 services, each to backend1 and backend2.
	web := `Array.from(document.querySelectorAll('tr.drow[data-dest^="web@example/"]'))`
	// Active on the master; on a backup, which holds the same services
	// warm, they may read healthy.
	poll("web@example's four destinations healthy", web+`.length === 4 && `+web+`.every(r => r.classList.contains("ok") && r.textContent.includes("healthy") && !r.textContent.includes("unhealthy"))`)
	// dns@example's UDP and TCP services to ns1 and ns2, which the lab
	// does not run: unhealthy, and the vserver on top.
	dns := `Array.from(document.querySelectorAll('tr.drow[data-dest^="dns@example/"]'))`
	poll("dns@example's four destinations unhealthy", dns+`.length === 4 && `+dns+`.every(r => r.classList.contains("down") && r.textContent.includes("unhealthy"))`)
	if got := eval(`Array.from(document.querySelectorAll("tbody.vserver")).map(e => e.dataset.name).join(" ")`); got != "dns@example web@example" {
		t.Errorf("vservers on the page, in order: %q; want the broken dns@example on top of web@example", got)
	}
	dests := eval(web + `.map(r => r.dataset.dest).sort().join(" ")`)
	for _, d := range []string{"198.51.100.11:80/TCP", "198.51.100.12:80/TCP", "[2001:db8:0:2::11]:80/TCP", "[2001:db8:0:2::12]:80/TCP"} {
		if !strings.Contains(dests, "/"+d) {
			t.Errorf("web@example's destinations on the page: %q; no %s", dests, d)
		}
	}
	backends := eval(`document.getElementById("backends").textContent`)
	for _, b := range []string{"web1.example.com.", "web2.example.com.", "ns1.example.com.", "ns2.example.com."} {
		if !strings.Contains(backends, b) {
			t.Errorf("the page's backends table has no %s:\n%s", b, backends)
		}
	}
	if got := eval(`document.getElementById("checks").textContent`); !strings.Contains(got, "198.51.100.11:8080") {
		t.Errorf("the page's checks table has no check of backend1 at 198.51.100.11:8080:\n%s", got)
	}

	// This node is lb1 (seesaw1, 192.0.2.2), and its HA state on the page
	// is the one its ECU's API reports. After the demo's failover lb1 may
	// be either: the word must settle on master or backup and agree.
	poll("this node's HA state", `["master", "backup"].includes(document.getElementById("ha").textContent)`)
	var word, api string
	deadline := time.Now().Add(time.Minute)
	for {
		word = eval(`document.getElementById("ha").textContent`)
		api = haWord(get)
		if word == api || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if word != api {
		t.Errorf("HA state on the page %q, in /api/v1/ha %q", word, api)
	}
	if got := eval(`Array.from(document.querySelectorAll(".card tr")).filter(r => r.textContent.includes("(this node)")).map(r => r.textContent).join("|")`); !strings.Contains(got, "seesaw1.example.com.") || !strings.Contains(got, "192.0.2.2") {
		t.Errorf("the page's this node: %q; want seesaw1.example.com. (lb1, 192.0.2.2)", got)
	}
	t.Logf("the demo's page: lb1 is %s", word)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	file := os.Getenv(demoScreenshotEnv)
	if file == "" {
		file = filepath.Join(t.TempDir(), "demo-status-page.png")
	}
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatalf("%s: %v", demoScreenshotEnv, err)
	}
	t.Logf("screenshot: %s (%d bytes)", file, len(shot))

	// The page updates itself: by now it has polled its ECU.
	poll("an update of the page", `document.getElementById("poll").textContent !== ""`)
	urls := reqs.URLs()
	if len(urls) < 2 {
		t.Errorf("the page made %d requests; it should poll: %q", len(urls), urls)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("the page requested %s: another host than lb1's ECU at %s", u, base)
		}
	}
}

// haWord is this node's HA state as /api/v1/ha gives it, in the page's
// words ("master", "backup", ...), or what went wrong.
func haWord(get func(path string) (int, string, error)) string {
	code, body, err := get("/api/v1/ha")
	if err != nil || code != http.StatusOK {
		return fmt.Sprintf("GET /api/v1/ha: %d %v %s", code, err, body)
	}
	var st struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return fmt.Sprintf("GET /api/v1/ha: %v: %s", err, body)
	}
	words := map[string]string{
		"HA_STATE_LEADER": "master", "HA_STATE_BACKUP": "backup", "HA_STATE_DISABLED": "disabled",
		"HA_STATE_ERROR": "error", "HA_STATE_SHUTDOWN": "shutdown", "HA_STATE_UNKNOWN": "unknown",
	}
	if w, ok := words[st.State]; ok {
		return w
	}
	return fmt.Sprintf("state %q", st.State)
}
