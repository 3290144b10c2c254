package pages_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/pages"
)

// The HTTP layer picks the language, binds a CSRF token to the browser's pre-session cookie, renders the
// page and sends the style sheet's hash in its Content-Security-Policy.
func Example() {
	csrf := pages.NewCSRF([]byte("a 32-byte key derived from the KEK"))
	now := time.Now()
	binding := "random-pre-session-cookie-value"

	page := pages.Page{
		Kind:     pages.KindSignIn,
		Locale:   pages.Negotiate("", "fr-CH, fr;q=0.9, en;q=0.8", "en"),
		Tenant:   "acme",
		Branding: directory.Branding{CompanyName: "Acme Shop", Colors: map[string]string{"primary": "#1f6feb"}},
		Action:   "/acme/sign-in?j=journey",
		CSRF:     csrf.Token(binding, now),
		Links:    map[string]string{"sign_up": "/acme/sign-up?j=journey"},
	}
	var b strings.Builder
	if err := pages.Render(&b, page); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println(page.Locale, strings.Contains(b.String(), "<h1>Connexion</h1>"))
	fmt.Println("style-src '" + pages.StyleHash(page)[:7] + "…'")

	// On POST, the token that came back with the form:
	fmt.Println(csrf.Check(page.CSRF, binding, now.Add(time.Minute), 30*time.Minute))
	// Output:
	// fr true
	// style-src 'sha256-…'
	// true
}

func ExampleNegotiate() {
	fmt.Println(pages.Negotiate("de fr", "en", "en"))      // ui_locales first
	fmt.Println(pages.Negotiate("", "de, fr;q=0.5", "en")) // then Accept-Language
	fmt.Println(pages.Negotiate("", "de", "fr-CA"))        // then the tenant's default
	fmt.Println(pages.Negotiate("ja", "es", ""))           // then English
	// Output:
	// fr
	// fr
	// fr
	// en
}

func ExampleCheckPassword() {
	fmt.Printf("%q\n", pages.CheckPassword("short"))
	fmt.Printf("%q\n", pages.CheckPassword("Password123"))
	fmt.Printf("%q\n", pages.CheckPassword("jane.doe@example.com", "jane.doe@example.com"))
	fmt.Printf("%q\n", pages.CheckPassword("correct horse battery staple", "jane.doe@example.com"))
	// Output:
	// "password_too_short"
	// "password_common"
	// "password_personal"
	// ""
}
