package pages

import (
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	const email = "Jane.Doe1984@Example.com"
	tests := []struct {
		pw     string
		inputs []string
		want   string
	}{
		{"", nil, "password_too_short"},
		{"abc", nil, "password_too_short"},
		{"x7#kQ9!", nil, "password_too_short"}, // 7
		{"パスワード12", nil, "password_too_short"}, // 7 characters, 17 bytes
		{"x7#kQ9!m", nil, ""},                  // 8
		{"ʒɐ§ŧ¶ø→ŋ", nil, ""},                  // 8 characters, more bytes
		{strings.Repeat("Zq9!", 16), nil, ""},  // 64
		{strings.Repeat("Zq9!", 64), nil, ""},  // 256
		{strings.Repeat("Zq9!", 64) + "x", nil, "password_too_long"},
		{"correct horse battery staple", nil, ""},
		{"password", nil, "password_common"},
		{"Password", nil, "password_common"},
		{"PASSWORD1", nil, "password_common"},
		{"Password123!", nil, "password_common"},
		{"p@ssw0rd", nil, "password_common"},
		{"12345678", nil, "password_common"},
		{"123456789", nil, "password_common"},
		{"qwertyuiop", nil, "password_common"},
		{"1q2w3e4r", nil, "password_common"},
		{"azertyuiop", nil, "password_common"},
		{"iloveyou", nil, "password_common"},
		{"sunshine", nil, "password_common"},
		{"football1", nil, "password_common"},
		{"michael1990", nil, "password_common"},
		{"motdepasse", nil, "password_common"},
		{"11111111", nil, "password_common"},
		{"zzzzzzzzzzzzz", nil, "password_common"},
		{"ééééééééé", nil, "password_common"},
		{email, []string{email}, "password_personal"},
		{"jane.doe1984@example.com", []string{email}, "password_personal"},
		{"jane.doe1984", []string{email}, "password_personal"},
		{"JANE.DOE1984", []string{" " + email + " "}, "password_personal"},
		{"jane.doe1984!", []string{email}, ""},
		{"acmeshop2", []string{"", "AcmeShop2"}, "password_personal"},
		{"a-long-and-unusual-one", []string{email}, ""},
	}
	for _, tt := range tests {
		if got := CheckPassword(tt.pw, tt.inputs...); got != tt.want {
			t.Errorf("CheckPassword(%q, %q) = %q, want %q", tt.pw, tt.inputs, got, tt.want)
		}
	}
}

func TestCommonPasswordList(t *testing.T) {
	if !strings.HasPrefix(commonPasswordsText, "# ") || !strings.Contains(commonPasswordsText, "How it was made") {
		t.Error("common.txt does not start with the comment that says how it was made")
	}
	set := commonPasswords()
	if len(set) < 10000 {
		t.Errorf("%d common passwords, want at least 10,000", len(set))
	}
	for pw := range set {
		if pw != strings.ToLower(pw) || strings.TrimSpace(pw) != pw {
			t.Errorf("%q is not lowercased and trimmed", pw)
		}
		if n := len([]rune(pw)); n < MinPasswordLength || n > 64 {
			t.Errorf("%q could never be checked: %d characters", pw, n)
		}
	}
}

func BenchmarkCheckPassword(b *testing.B) {
	if CheckPassword("correct horse battery staple", "jane@example.com") != "" {
		b.Fatal("a good password refused")
	}
	for b.Loop() {
		CheckPassword("correct horse battery staple", "jane@example.com")
	}
}
