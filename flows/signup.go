package flows

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"postern.dev/postern/directory"
)

// SignUpInput is what the person submitted on the sign-up form.
type SignUpInput struct {
	Email      string
	Attributes map[string]string
}

// SignUpResult is the input understood: the user's profile and custom attributes, or the errors to show,
// by field, as message ids of the hosted pages ("required", "pattern_mismatch", …).
type SignUpResult struct {
	Email      string
	Profile    directory.Profile
	Attributes map[string]any
	Errors     map[string]string
}

// OK reports whether the input can go on to verification.
func (r SignUpResult) OK() bool { return len(r.Errors) == 0 }

// Built-in attribute names land in the OIDC standard claims of the profile.
var builtIn = map[string]func(p *directory.Profile, v string){
	"name":         func(p *directory.Profile, v string) { p.Name = v },
	"given_name":   func(p *directory.Profile, v string) { p.GivenName = v },
	"family_name":  func(p *directory.Profile, v string) { p.FamilyName = v },
	"nickname":     func(p *directory.Profile, v string) { p.Nickname = v },
	"picture":      func(p *directory.Profile, v string) { p.Picture = v },
	"locale":       func(p *directory.Profile, v string) { p.Locale = v },
	"zoneinfo":     func(p *directory.Profile, v string) { p.Zoneinfo = v },
	"phone_number": func(p *directory.Profile, v string) { p.PhoneNumber = v },
}

// maxAttributeLength bounds one submitted value.
const maxAttributeLength = 512

// ValidateSignUp checks a sign-up against the tenant's flow: the email, and each declared attribute for
// presence, type and pattern (anchored, as HTML's pattern attribute is). Undeclared inputs are ignored.
func ValidateSignUp(cfg directory.SignUp, in SignUpInput) SignUpResult {
	r := SignUpResult{Errors: map[string]string{}}
	r.Email = directory.NormalizeEmail(in.Email)
	switch {
	case r.Email == "":
		r.Errors["email"] = "required"
	case !directory.PlausibleEmail(r.Email):
		r.Errors["email"] = "email_invalid"
	}
	for _, def := range cfg.Attributes {
		v := strings.TrimSpace(in.Attributes[def.Name])
		if def.Type == "boolean" {
			if v != "" && v != "true" && v != "on" && v != "1" && v != "false" {
				r.Errors[def.Name] = "required"
				continue
			}
			b := v == "true" || v == "on" || v == "1"
			if def.Required && !b {
				r.Errors[def.Name] = "required"
				continue
			}
			r.set(def.Name, b)
			continue
		}
		if v == "" {
			if def.Required {
				r.Errors[def.Name] = "required"
			}
			continue
		}
		if utf8.RuneCountInString(v) > maxAttributeLength || strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 }) {
			r.Errors[def.Name] = "pattern_mismatch"
			continue
		}
		if def.Pattern != "" {
			re, err := regexp.Compile("^(?:" + def.Pattern + ")$")
			if err != nil || !re.MatchString(v) {
				r.Errors[def.Name] = "pattern_mismatch"
				continue
			}
		}
		switch def.Type {
		case "number":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				r.Errors[def.Name] = "number_invalid"
				continue
			}
			r.set(def.Name, f)
		case "date":
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				r.Errors[def.Name] = "date_invalid"
				continue
			}
			r.set(def.Name, v)
		default:
			r.set(def.Name, v)
		}
	}
	return r
}

func (r *SignUpResult) set(name string, v any) {
	if f, ok := builtIn[name]; ok {
		if s, isString := v.(string); isString {
			f(&r.Profile, s)
			return
		}
	}
	if r.Attributes == nil {
		r.Attributes = map[string]any{}
	}
	r.Attributes[name] = v
}
