package oidc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"postern.dev/postern/directory"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// The acme tenant's branding in the browser test.
var (
	brandCompany = "Acme Outfitters"
	brandPrimary = color.RGBA{R: 0x0b, G: 0x6e, B: 0x4f, A: 0xff}
)

// TestBrowserSignInAndSingleSignOn signs in on the hosted page in real headless Chromium and follows the
// redirects to a real client app; then a second app of the tenant gets a code from the same browser
// without a password prompt (single sign-on). It also checks what only a browser shows: the labels tied
// to the inputs, the autocomplete tokens password managers read, the tenant's colours and logo applied
// under the page's Content-Security-Policy, the HttpOnly session cookie, and the page's language from
// ui_locales and Accept-Language.
func TestBrowserSignInAndSingleSignOn(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("needs Debian's chromium at /usr/bin/chromium; .ci/run installs it")
		}
		t.Fatalf("CI is set and the browser is missing: %v", err)
	}
	e := newEnv(t)
	client := newClientApp(t)
	acme, err := e.store.Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	settings := acme.Settings
	settings.Branding = directory.Branding{CompanyName: brandCompany, Logo: brandLogo(brandPrimary),
		Colors: map[string]string{"primary": fmt.Sprintf("#%02x%02x%02x", brandPrimary.R, brandPrimary.G, brandPrimary.B)}}
	grants := []string{"authorization_code", "refresh_token"}
	e.propose(
		directory.MakeOp(directory.OpTenantUpdate, directory.TenantPatch{ID: "acme", Settings: &settings}),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "portal", Tenant: "acme", Name: "portal", ClientID: "portal",
			Type: directory.AppWeb, Secrets: []directory.SecretHash{{Hash: directory.HashClientSecret(e.secret), CreatedAt: time.Now()}},
			RedirectURIs: []string{client.url + "/callback"}, GrantTypes: grants}),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "storefront", Tenant: "acme", Name: "storefront", ClientID: "storefront",
			Type: directory.AppSPA, RedirectURIs: []string{client.url + "/spa-callback"}, GrantTypes: grants}),
	)

	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	tab := startChromium(t, ctx)
	documents := recordDocuments(t, tab)
	console := recordConsole(tab)
	issuer := e.issuer("acme")

	// The language of the page: ui_locales first, then Accept-Language. Each in a fresh browser context,
	// so no session skips the page.
	english := inspectSignIn(t, tab, issuer+"/authorize?"+authorizeQuery("portal", client.url+"/callback", "st-en", nil).Encode())
	for _, tc := range []struct{ name, acceptLanguage, uiLocales string }{
		{"Accept-Language fr", "fr-CA,fr;q=0.9,en;q=0.5", ""},
		{"ui_locales=fr over Accept-Language en", "en-US,en;q=0.9", "fr"},
	} {
		incognito, closeIncognito := chromedp.NewContext(tab, chromedp.WithNewBrowserContext())
		if _, err := chromedp.Call(incognito, network.SetExtraHTTPHeaders,
			network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": tc.acceptLanguage}}); err != nil {
			t.Fatalf("%s: setting Accept-Language: %v", tc.name, err)
		}
		extra := url.Values{}
		if tc.uiLocales != "" {
			extra.Set("ui_locales", tc.uiLocales)
		}
		french := inspectSignIn(t, incognito, issuer+"/authorize?"+authorizeQuery("portal", client.url+"/callback", "st-fr", extra).Encode())
		if french.Lang != "fr" || french.Heading == english.Heading || french.Submits[0] == english.Submits[0] ||
			french.Inputs[0].Label == english.Inputs[0].Label {
			t.Errorf("%s: the page is not in French: %+v (English: %+v)", tc.name, french, english)
		}
		closeIncognito()
	}

	// Sign in to the web app: authorization code with PKCE, state and nonce.
	verifier, challenge := pkce()
	authURL := issuer + "/authorize?" + authorizeQuery("portal", client.url+"/callback", "st4te-web", url.Values{
		"nonce": {"n0nce-web"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}).Encode()
	p := inspectSignIn(t, tab, authURL)
	if loc, _ := chromedp.Run(tab, chromedp.Location()); !strings.HasPrefix(loc, issuer+"/sign-in?j=") {
		t.Fatalf("the authorization request landed on %s, want the sign-in page", loc)
	}
	if p.Lang != "en" || p.Company != brandCompany || !p.LogoShown {
		t.Errorf("sign-in page: lang %q, company %q, logo shown %v", p.Lang, p.Company, p.LogoShown)
	}
	// The page's one style element carries the colours; a wrong CSP hash would leave the button grey.
	if want := fmt.Sprintf("rgb(%d, %d, %d)", brandPrimary.R, brandPrimary.G, brandPrimary.B); p.ButtonBackground != want {
		t.Errorf("submit button background %q, want the tenant's primary colour %s", p.ButtonBackground, want)
	}
	if len(p.Submits) != 1 {
		t.Errorf("the sign-in page has %d submit buttons %q, want exactly one", len(p.Submits), p.Submits)
	}
	autocomplete := map[string]string{}
	for _, in := range p.Inputs {
		if in.Label == "" {
			t.Errorf("input %q has no label", in.Name)
		}
		autocomplete[in.Autocomplete] = in.Type
	}
	if len(p.Inputs) != 2 || autocomplete["username"] != "email" || autocomplete["current-password"] != "password" {
		t.Errorf("sign-in inputs %+v, want an email input with autocomplete=username and a password input with autocomplete=current-password", p.Inputs)
	}
	shot, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile("/tmp/postern-sign-in.png", shot, 0o644); err != nil {
		t.Logf("keeping the screenshot: %v", err)
	}

	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS(`input[autocomplete="username"]`), "ann@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[autocomplete="current-password"]`), password),
	); err != nil {
		t.Fatalf("filling in the form: %v", err)
	}
	// The browser blocks a redirect its page's CSP does not allow, and says so only on the console.
	submitted, stop := context.WithTimeout(tab, 10*time.Second)
	_, err = chromedp.Run(submitted, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`form [type="submit"]`))))
	stop()
	if err != nil {
		loc, _ := chromedp.Run(tab, chromedp.Location())
		t.Fatalf("submitting the sign-in form: no page loaded (%v); the browser is at %s; console: %q", err, loc, console.all())
	}
	q := client.received(t, ctx, "/callback")
	if q.Get("code") == "" || q.Get("state") != "st4te-web" || q.Get("iss") != issuer {
		t.Fatalf("authorization response at the client: %v", q)
	}
	if loc, _ := chromedp.Run(tab, chromedp.Location()); !strings.HasPrefix(loc, client.url+"/callback?") {
		t.Fatalf("after signing in the browser is at %s, want the client's callback", loc)
	}
	// The session cookie is HttpOnly: the client's page shares the host 127.0.0.1 with the edge, and
	// cookies do not keep ports apart, so a readable cookie would show here.
	if cookies, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(cookies, "postern_") {
		t.Errorf("page script reads the edge's cookies: %q %v", cookies, err)
	}
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	status, tok := e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {client.url + "/callback"},
		"client_id": {"portal"}, "client_secret": {e.secret}, "code_verifier": {verifier}})
	rawID, _ := tok["id_token"].(string)
	if status != http.StatusOK || rawID == "" {
		t.Fatalf("redeeming the web app's code: %d %v", status, tok)
	}
	idt, err := provider.Verifier(&gooidc.Config{ClientID: "portal"}).Verify(ctx, rawID)
	if err != nil || idt.Nonce != "n0nce-web" || idt.Subject != "u1" {
		t.Fatalf("web app's ID token: %+v, %v", idt, err)
	}

	// Single sign-on: the SPA's authorization request comes straight back with a code.
	seen := documents.count()
	verifier, challenge = pkce()
	if err := chromedp.Do(tab, chromedp.Navigate(issuer+"/authorize?"+authorizeQuery("storefront", client.url+"/spa-callback", "st4te-spa",
		url.Values{"nonce": {"n0nce-spa"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}).Encode())); err != nil {
		t.Fatalf("SPA authorization request: %v", err)
	}
	q = client.received(t, ctx, "/spa-callback")
	if q.Get("code") == "" || q.Get("state") != "st4te-spa" || q.Get("iss") != issuer {
		t.Fatalf("SPA authorization response: %v", q)
	}
	if shown := documents.since(seen); len(shown) != 1 || !strings.HasPrefix(shown[0], client.url+"/spa-callback?") {
		t.Fatalf("single sign-on showed %q, want only the SPA's callback", shown)
	}
	if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('input[type=password]').length`)); err != nil || n != 0 {
		t.Fatalf("a password field on the page after single sign-on: %d %v", n, err)
	}
	status, tok = e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {client.url + "/spa-callback"},
		"client_id": {"storefront"}, "code_verifier": {verifier}})
	rawID, _ = tok["id_token"].(string)
	if status != http.StatusOK || rawID == "" {
		t.Fatalf("redeeming the SPA's code: %d %v", status, tok)
	}
	idt, err = provider.Verifier(&gooidc.Config{ClientID: "storefront"}).Verify(ctx, rawID)
	if err != nil || idt.Nonce != "n0nce-spa" || idt.Subject != "u1" {
		t.Fatalf("SPA's ID token: %+v, %v", idt, err)
	}
}

// startChromium starts headless Chromium with the flags that work as root (MACHINE-NOTES.md) and returns
// the context of its first tab. The browser ends with ctx or when the test ends, whichever is first.
func startChromium(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Debian's launcher means to add this when /dev/shm is small, but its check fails on some
		// machines, and a container's 64 MB /dev/shm crashes the renderer.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"), // the Accept-Language of a tab without its own, whatever the machine's locale
		chromedp.WindowSize(800, 640),
		chromedp.UserDataDir(t.TempDir()),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	// Cleanups run last in, first out: the browser exits before t.TempDir removes its profile.
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return tab
}

// documentLog is the URLs of the documents a tab loaded, in order: redirects are not documents, so a
// page the browser showed is here and a 302 it followed is not.
type documentLog struct {
	mu   sync.Mutex
	urls []string
}

func recordDocuments(t *testing.T, tab context.Context) *documentLog {
	t.Helper()
	d := &documentLog{}
	err := chromedp.Listen(tab, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && r.Type == network.ResourceTypeDocument {
			d.mu.Lock()
			d.urls = append(d.urls, r.Response.URL)
			d.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *documentLog) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.urls)
}

func (d *documentLog) since(n int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.urls[n:]...)
}

// consoleLog is the text of the messages on a tab's console: CSP violations, failed loads, script errors.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
}

func recordConsole(tab context.Context) *consoleLog {
	c := &consoleLog{}
	msgs := chromedp.Console(tab) // subscribed now; read until the tab closes
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, string(m.Type)+": "+m.Text)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *consoleLog) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// signInPage is what the browser makes of a sign-in page.
type signInPage struct {
	Lang             string      `json:"lang"`
	Heading          string      `json:"heading"`
	Company          string      `json:"company"`
	Inputs           []pageInput `json:"inputs"`
	Submits          []string    `json:"submits"` // the text of every control that submits a form
	ButtonBackground string      `json:"buttonBackground"`
	LogoShown        bool        `json:"logoShown"`
}

type pageInput struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	Autocomplete string `json:"autocomplete"`
	Label        string `json:"label"` // the text of the labels the browser ties to the input
}

// inspectSignInJS reads the page through the DOM, as assistive technology and password managers do:
// labels by input.labels, submit controls by their type (a <button> without one submits too).
const inspectSignInJS = `(() => {
	const submits = [...document.querySelectorAll('button, input')].filter(el => el.type === 'submit' || el.type === 'image');
	const logo = document.querySelector('.brand img');
	return {
		lang: document.documentElement.lang,
		heading: document.querySelector('h1')?.textContent.trim() ?? '',
		company: document.querySelector('.company')?.textContent.trim() ?? '',
		inputs: [...document.querySelectorAll('form input')].filter(el => el.type !== 'hidden').map(el => ({
			name: el.name, type: el.type, autocomplete: el.getAttribute('autocomplete') ?? '',
			label: [...el.labels].map(l => l.textContent.trim()).join(' '),
		})),
		submits: submits.map(el => el.textContent.trim() || el.value),
		buttonBackground: submits.length ? getComputedStyle(submits[0]).backgroundColor : '',
		logoShown: !!logo && logo.complete && logo.naturalWidth > 0,
	};
})()`

// inspectSignIn navigates the tab to an authorization URL and reads the sign-in page it lands on.
func inspectSignIn(t *testing.T, tab context.Context, authURL string) signInPage {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(authURL)); err != nil {
		t.Fatalf("navigating to %s: %v", authURL, err)
	}
	p, err := chromedp.Run(tab, chromedp.Evaluate[signInPage](inspectSignInJS))
	if err != nil {
		t.Fatalf("reading the sign-in page: %v", err)
	}
	if len(p.Inputs) == 0 || len(p.Submits) == 0 {
		loc, _ := chromedp.Run(tab, chromedp.Location())
		t.Fatalf("no sign-in form at %s: %+v", loc, p)
	}
	return p
}

func authorizeQuery(clientID, redirectURI, state string, extra url.Values) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"scope": {"openid profile email"}, "state": {state}}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// clientApp is the relying party's end of the redirects: a real HTTP server that records each
// authorization response the browser brings it.
type clientApp struct {
	url       string
	responses chan clientResponse
}

type clientResponse struct {
	path  string
	query url.Values
}

func newClientApp(t *testing.T) *clientApp {
	c := &clientApp{responses: make(chan clientResponse, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" && r.URL.Path != "/spa-callback" {
			http.NotFound(w, r) // the browser asks for /favicon.ico too
			return
		}
		select {
		case c.responses <- clientResponse{r.URL.Path, r.URL.Query()}:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Client app</title></head><body><p id="signed-in">Signed in.</p></body></html>`)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// received returns the next authorization response the client got, which must have come to path.
func (c *clientApp) received(t *testing.T, ctx context.Context, path string) url.Values {
	t.Helper()
	select {
	case r := <-c.responses:
		if r.path != path {
			t.Fatalf("the client got an authorization response at %s, want %s: %v", r.path, path, r.query)
		}
		return r.query
	case <-ctx.Done():
		t.Fatalf("no authorization response at the client's %s: %v", path, ctx.Err())
		return nil
	}
}

// brandLogo draws the tenant's logo, a ring in its colour, as a PNG data: URL: the kind of logo a
// tenant without an image host sets, and the only kind the page's CSP lets load from no https origin.
func brandLogo(c color.RGBA) string {
	const n = 64
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			if r := math.Hypot(float64(x)-n/2+.5, float64(y)-n/2+.5); r >= 14 && r < 30 {
				img.Set(x, y, c)
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err) // an in-memory RGBA image always encodes
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}
