package ecu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seesawlb/seesaw/deploy/browsertest"
)

// TestPageInABrowser: a real browser loads the status page of an ECU fed
// by a real engine whose checks probe real servers. It finds the
// vservers; sees a destination turn red when its server stops and back
// when it returns, without a reload; filters; shows the stale banner when
// the engine goes away; and makes no request to another host. The
// screenshot is kept (ECU_SCREENSHOT names the file; by default the
// test's temporary directory).
func TestPageInABrowser(t *testing.T) {
	ctx := browsertest.Start(t, 1280, 1000, 3*time.Minute)
	r := newECURig(t)
	r.waitFor("every destination active", func() bool {
		_, body := r.get("/metrics")
		return len(activeRE.FindAllString(body, -1)) == 6
	})

	reqs := browsertest.Record(t, ctx)
	must(t, chromedp.Do(ctx, chromedp.Navigate(r.base+"/")))

	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\n%s", what, err, html)
		}
	}
	poll("three vservers", `document.querySelectorAll("tbody.vserver").length === 3`)
	poll("this node master", `document.getElementById("ha").textContent === "master"`)
	poll("the NCC's last apply", `document.getElementById("lastapply") !== null && document.getElementById("lastapply").textContent.includes("kernel writes")`)
	names, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("tbody.vserver")).map(e => e.dataset.name)`))
	must(t, err)
	if strings.Join(names, " ") != "api dns web" {
		t.Errorf("vservers on the page: %q", names)
	}
	// A mark on the window: if the page reloaded, it would be gone.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.seesawMark = true`))
	must(t, err)

	webA := `document.querySelector('tr.drow[data-dest="web/127.0.3.1:80/TCP"]')`
	poll("web-a active", webA+` && `+webA+`.classList.contains("ok")`)
	r.backends["web-a"].stop()
	poll("web-a red", webA+` && `+webA+`.classList.contains("down") && `+webA+`.textContent.includes("unhealthy")`)
	// Broken first: the degraded vserver is on top now.
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("tbody.vserver").dataset.name`))
	must(t, err)
	if first != "web" {
		t.Errorf("first vserver with web-a down: %q, want web", first)
	}
	poll("the problem listed", `document.querySelector("ul.problems") && document.querySelector("ul.problems").textContent.includes("web/127.0.3.1:80/TCP")`)

	// Filter: "api" leaves one vserver; "only problems" leaves web.
	must(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("filter"), "api")))
	visible := `Array.from(document.querySelectorAll("tbody.vserver")).filter(e => !e.classList.contains("hidden")).map(e => e.dataset.name).join(" ")`
	poll("filtered to api", visible+` === "api"`)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(f => { f.value = ""; f.dispatchEvent(new Event("input")); return true })(document.getElementById("filter"))`))
	must(t, err)
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("problems"))))
	poll("only problems: web", visible+` === "web"`)
	// The filter holds across the live updates: wait for the next one.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.seesawPolled = document.getElementById("poll").textContent, true`))
	must(t, err)
	poll("an update", `document.getElementById("poll").textContent !== window.seesawPolled`)
	poll("still only web after the update", visible+` === "web"`)

	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("problems"))))
	poll("every vserver shown again", visible+` === "web api dns"`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must(t, err)
	file := os.Getenv("ECU_SCREENSHOT")
	if file == "" {
		file = filepath.Join(t.TempDir(), "status-page.png")
	}
	must(t, os.WriteFile(file, shot, 0o644))
	t.Logf("screenshot: %s (%d bytes)", file, len(shot))

	r.backends["web-a"].start(t)
	poll("web-a back to active", webA+` && `+webA+`.classList.contains("ok")`)

	// The engine goes away: the page stays, with the last data, marked stale.
	r.stopEng()
	poll("stale banner", `document.getElementById("stale") !== null && document.querySelectorAll("tbody.vserver").length === 3`)

	reloaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.seesawMark !== true`))
	must(t, err)
	if reloaded {
		t.Error("the page reloaded; it should update in place")
	}
	urls := reqs.URLs()
	if len(urls) < 3 {
		t.Errorf("the page made %d requests; it should poll", len(urls))
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, r.base+"/") {
			t.Errorf("the page requested %s: another host than the ECU", u)
		}
	}
}
