package manifest_test

import (
	"fmt"

	"postern.dev/postern/directory/manifest"
)

func ExampleParseYAML() {
	src := []byte(`tenant: acme
sign_in_methods: [password, email_otp]
apps:
  - name: shop-web
    type: web
    client_secret: ${SHOP_SECRET}
    redirect_uris: [https://shop.example/callback]
`)
	env := map[string]string{"SHOP_SECRET": "a-long-random-secret: with #characters-yaml-would-mind"}
	m, err := manifest.ParseYAML(src, manifest.Options{Getenv: func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Tenant, m.Apps[0].Name, m.Apps[0].ClientSecret)
	// Output: acme shop-web a-long-random-secret: with #characters-yaml-would-mind
}

func ExampleParseYAML_errors() {
	src := []byte(`tenant: admin
apps:
  - name: shop-web
    type: spa
    redirect_uri: [https://shop.example/callback]
    client_secret: ${SHOP_SECRET}
`)
	_, err := manifest.ParseYAML(src, manifest.Options{Getenv: func(string) (string, bool) { return "", false }})
	fmt.Println(err)
	// Output:
	// line 1: tenant: tenant id "admin" is reserved: it collides with one of the edge's own paths
	// line 5: apps[0].redirect_uri: unknown field (did you mean redirect_uris?)
	// line 6: apps[0].client_secret: environment variable SHOP_SECRET is not set
}

func ExampleParseJSON() {
	_, err := manifest.ParseJSON([]byte(`{"tenant": "acme", "apps": [{"name": "cli", "type": "native", "redirect_uris": ["myapp:/cb"]}]}`))
	fmt.Println(err)
	// Output: apps[0].redirect_uris[0]: the private-use scheme myapp: must be a reverse domain name such as com.example.app (RFC 8252 §7.1)
}

func ExampleErrors() {
	_, err := manifest.ParseJSON([]byte(`{"tenant": "ab"}`))
	if errs, ok := err.(manifest.Errors); ok {
		for _, e := range errs {
			fmt.Printf("field=%s line=%d\n", e.Field, e.Line)
		}
	}
	// Output: field=tenant line=0
}
