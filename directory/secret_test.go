package directory

import (
	"strings"
	"testing"
	"time"
)

func TestPasswords(t *testing.T) {
	hash, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not argon2id with OWASP's parameters in PHC form", hash)
	}
	if strings.Contains(hash, "correct horse") {
		t.Error("the hash contains the password")
	}
	for _, c := range []struct {
		password string
		want     bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"correct horse battery staple ", false},
		{"", false},
	} {
		ok, err := VerifyPassword(hash, c.password)
		if err != nil || ok != c.want {
			t.Errorf("VerifyPassword(%q) = %v, %v, want %v", c.password, ok, err, c.want)
		}
	}
	other, _ := HashPassword("correct horse battery staple")
	if other == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	empty, _ := HashPassword("")
	if ok, err := VerifyPassword(empty, ""); !ok || err != nil {
		t.Errorf("the empty password does not verify against its own hash: %v", err)
	}

	parts := strings.Split(hash, "$") // "", argon2id, v=19, params, salt, key
	with := func(i int, v string) string {
		p := append([]string{}, parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	malformed := map[string]string{
		"empty":               "",
		"plain text":          "hunter2",
		"bcrypt":              "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":             with(1, "argon2i"),
		"too few parts":       strings.Join(parts[:5], "$"),
		"too many parts":      hash + "$x",
		"unknown version":     with(2, "v=16"),
		"no version":          with(2, "x"),
		"params garbage":      with(3, "m=x,t=2,p=1"),
		"params missing":      with(3, ""),
		"zero time":           with(3, "m=19456,t=0,p=1"),
		"zero threads":        with(3, "m=19456,t=2,p=0"),
		"threads too many":    with(3, "m=19456,t=2,p=300"),
		"negative memory":     with(3, "m=-1,t=2,p=1"),
		"absurd memory":       with(3, "m=4294967295,t=2,p=1"),
		"absurd time":         with(3, "m=19456,t=4294967295,p=1"),
		"salt not base64":     with(4, "!!!"),
		"key not base64":      with(5, "!!!"),
		"empty key":           with(5, ""),
		"key with padding":    with(5, parts[5]+"=="),
		"only dollar signs":   "$$$$$",
		"null bytes":          "$argon2id$v=19$m=19456,t=2,p=1$\x00$\x00",
		"sha256 client style": HashClientSecret("x"),
	}
	for name, h := range malformed {
		t.Run(name, func(t *testing.T) {
			ok, err := verifyNoPanic(t, h, "correct horse battery staple")
			if ok || err == nil {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", h, ok, err)
			}
		})
	}
}

// verifyNoPanic reports a panic as a test failure rather than a crash of the whole test binary.
func verifyNoPanic(t *testing.T, hash, password string) (ok bool, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("VerifyPassword(%q) panicked: %v", hash, r)
		}
	}()
	return VerifyPassword(hash, password)
}

func TestClientSecrets(t *testing.T) {
	s1, s2, s3 := NewClientSecret(), NewClientSecret(), NewClientSecret()
	if len(s1) != 43 || s1 == s2 || strings.ContainsAny(s1, "+/=") {
		t.Errorf("NewClientSecret = %q, %q: want 43 distinct URL-safe characters", s1, s2)
	}
	h1 := HashClientSecret(s1)
	if !strings.HasPrefix(h1, "sha256$") || strings.Contains(h1, s1) {
		t.Errorf("HashClientSecret = %q", h1)
	}
	if HashClientSecret(s1) == h1 {
		t.Error("two hashes of one secret are equal: the salt is not random")
	}
	if !VerifyClientSecret(h1, s1) {
		t.Error("a secret does not verify against its hash")
	}
	for name, c := range map[string]struct{ hash, secret string }{
		"wrong secret":     {h1, s2},
		"empty secret":     {h1, ""},
		"prefix of secret": {h1, s1[:42]},
		"secret plus":      {h1, s1 + "x"},
		"empty hash":       {"", s1},
		"plain secret":     {s1, s1},
		"wrong scheme":     {strings.Replace(h1, "sha256$", "md5$", 1), s1},
		"two parts":        {"sha256$abc", s1},
		"bad salt":         {"sha256$!!!$" + strings.Split(h1, "$")[2], s1},
		"bad sum":          {strings.Split(h1, "$")[0] + "$" + strings.Split(h1, "$")[1] + "$!!!", s1},
		"short sum":        {h1[:len(h1)-4], s1},
		"argon2 hash":      {"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", s1},
	} {
		if VerifyClientSecret(c.hash, c.secret) {
			t.Errorf("%s: VerifyClientSecret(%q, %q) = true", name, c.hash, c.secret)
		}
	}

	app := App{Type: AppService, Secrets: []SecretHash{
		{Hash: h1, CreatedAt: t0},
		{Hash: HashClientSecret(s2), CreatedAt: t0.Add(time.Hour)},
	}}
	for _, c := range []struct {
		secret string
		want   bool
	}{{s1, true}, {s2, true}, {s3, false}, {"", false}} {
		if got := AppSecretMatches(app, c.secret); got != c.want {
			t.Errorf("AppSecretMatches(two secrets, %q) = %v, want %v", c.secret, got, c.want)
		}
	}
	if AppSecretMatches(App{Type: AppSPA}, "") || AppSecretMatches(App{Type: AppSPA}, s1) {
		t.Error("an app without secrets matched one")
	}
	if AppSecretMatches(app.Public(), s1) {
		t.Error("the public view of an app matched a secret")
	}
	if (App{Type: AppSPA}).Confidential() || (App{Type: AppNative}).Confidential() || !app.Confidential() {
		t.Error("Confidential: spa and native are public, service is confidential")
	}
}

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`"15m"`:   15 * time.Minute,
		`"1h30m"`: 90 * time.Minute,
		`900`:     15 * time.Minute,
		`0.5`:     500 * time.Millisecond,
		`"0s"`:    0,
	} {
		var d Duration
		if err := d.UnmarshalJSON([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("Duration(%s) = %v, %v, want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{`"fifteen"`, `true`, `{}`, `"15"`} {
		var d Duration
		if err := d.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("Duration(%s) accepted", in)
		}
	}
	if b, _ := Duration(15 * time.Minute).MarshalJSON(); string(b) != `"15m0s"` {
		t.Errorf("Duration marshals as %s", b)
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if len(id) != 26 || strings.ToLower(id) != id || strings.ContainsAny(id, "/=") || seen[id] {
			t.Fatalf("NewID = %q", id)
		}
		seen[id] = true
	}
}
