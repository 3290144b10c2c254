package pages

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"
)

// Password length limits, in characters (Unicode code points). NIST SP 800-63B section 3.1.1.2 asks for at
// least 8 and for accepting at least 64; long passphrases are welcome, up to a bound that keeps hashing cheap.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 256
)

//go:embed passwords/common.txt
var commonPasswordsText string

// commonPasswords is the shipped list as a set, built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 60000)
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[line] = struct{}{}
	}
	return set
})

// CheckPassword says whether pw may be chosen as a new password, as the message id the sign-up page shows
// when it may not, or "" when it may:
//
//   - password_too_short, password_too_long: outside MinPasswordLength..MaxPasswordLength characters;
//   - password_common: in the shipped list of common passwords (compared lowercased), or one character
//     repeated;
//   - password_personal: equal, ignoring case, to one of userInputs (the email, say) or to the local part
//     of one that is an email address.
//
// Composition rules (a digit, a symbol) are deliberately absent, after NIST SP 800-63B section 3.1.1.2.
func CheckPassword(pw string, userInputs ...string) (errorID string) {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLength {
		return "password_too_short"
	}
	if n > MaxPasswordLength {
		return "password_too_long"
	}
	lower := strings.ToLower(strings.TrimSpace(pw))
	if _, ok := commonPasswords()[lower]; ok || oneCharacter(lower) {
		return "password_common"
	}
	for _, in := range userInputs {
		in = strings.ToLower(strings.TrimSpace(in))
		if in == "" {
			continue
		}
		if lower == in {
			return "password_personal"
		}
		if at := strings.LastIndexByte(in, '@'); at > 0 && lower == in[:at] {
			return "password_personal"
		}
	}
	return ""
}

func oneCharacter(s string) bool {
	first, size := utf8.DecodeRuneInString(s)
	return size > 0 && strings.Trim(s, string(first)) == ""
}
