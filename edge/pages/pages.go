package pages

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"postern.dev/postern/directory"
)

// Page kinds.
const (
	KindSignIn     = "sign_in"
	KindSignUp     = "sign_up"
	KindVerifyCode = "verify_code"
	KindSignedOut  = "signed_out"
	KindError      = "error"
)

// Names of the form fields the pages post, besides the sign-up attributes (posted under Field.Name).
const (
	FieldCSRF     = "csrf"
	FieldEmail    = "email"
	FieldPassword = "password"
	FieldCode     = "code"
)

// Page is everything one hosted page shows. The caller builds it; Render never reads anything else.
//
// Texts a person reads are message ids, localized by the renderer in Locale: FormErrorID, Field.Error,
// EmailError, PasswordError, CodeError and Message. A value that is not a known id is shown as written
// (escaped), for text the caller has already localized; internal error text must never be put there.
type Page struct {
	Kind     string // one of the Kind constants
	Locale   string // from Negotiate; a tag without a catalog reads in the closest one, else English
	Tenant   string // the tenant id, shown when the branding has no company name
	Branding directory.Branding

	Action string // the form's action URL, journey id included; posted with method POST
	CSRF   string // the token from CSRF.Token, in the hidden field "csrf" of every form

	Email         string  // prefill of the email field; on verify_code, the address the code went to
	Fields        []Field // sign_up: the flow's attributes, in order (see AttributeFields)
	EmailError    string  // message id of the email field's error
	PasswordError string  // message id of the password field's error (password_too_short, …)
	CodeError     string  // message id of the code field's error (code_invalid, …)

	FormErrorID   string            // message id of the form-level error (invalid_credentials, csrf, …)
	FormErrorArgs map[string]string // values for {name} placeholders in its text, beside the built-in ones
	FormError     string            // already-localized form-level error text, shown when FormErrorID is ""

	// Links by role: "sign_up" (on sign_in), "sign_in" (on sign_up and signed_out), "back" (any page),
	// "resend" (on verify_code: a form posting there with its own CSRF field, to send a new code).
	Links map[string]string

	Message       string // error: a message id or text; generic_error when empty
	CorrelationID string // error: the id that links the page to the log line
}

// Field is one sign-up attribute's input.
type Field struct {
	Name  string // the attribute's name, also the form field's name
	Label string // shown unless the tenant's strings have "attr_<name>" for the locale; built-ins have a default
	// Type is the attribute type: string (a text input), number, boolean (a checkbox) or date. HTML input
	// types (text, tel, email, url, checkbox) are accepted as well.
	Type string
	// Autocomplete is the autocomplete token; when empty, the standard one for a built-in attribute
	// (given_name → given-name, …) and "off" for a custom one.
	Autocomplete string
	// Pattern is a regular expression the whole value must match, given to text-like inputs as the HTML
	// pattern attribute. Browsers read it as a JavaScript RegExp with the v flag and ignore one they cannot
	// parse, so the server's own check is the one that counts.
	Pattern  string
	Value    string // what the person entered, re-filled after an error; "true" checks a checkbox
	Error    string // message id of the field's error (required, pattern_mismatch, …)
	Required bool
}

// AttributeFields turns a sign-up flow's attribute definitions into the page's fields, in order. values
// (what the person entered) and errs (message ids) are by attribute name, and may be nil.
func AttributeFields(defs []directory.AttributeDef, values, errs map[string]string) []Field {
	fields := make([]Field, len(defs))
	for i, d := range defs {
		fields[i] = Field{Name: d.Name, Label: d.Label, Type: d.Type, Autocomplete: AutocompleteToken(d.Name),
			Pattern: d.Pattern, Required: d.Required, Value: values[d.Name], Error: errs[d.Name]}
	}
	return fields
}

// builtinAutocomplete maps the built-in profile attributes to their HTML autocomplete tokens.
// https://html.spec.whatwg.org/multipage/form-control-infrastructure.html#autofill
var builtinAutocomplete = map[string]string{
	"name":         "name",
	"given_name":   "given-name",
	"family_name":  "family-name",
	"nickname":     "nickname",
	"phone_number": "tel",
	"locale":       "language",
	"picture":      "photo",
	"zoneinfo":     "off",
	"email":        "email",
}

// AutocompleteToken is the autocomplete token of an attribute: the standard one for a built-in, "off"
// for a custom attribute (the browser has nothing sensible to offer for a loyalty number).
func AutocompleteToken(attribute string) string {
	if t, ok := builtinAutocomplete[attribute]; ok {
		return t
	}
	return "off"
}

// inputType maps an attribute type (or an HTML input type) to the input's type and inputmode.
func inputType(f Field) (typ, inputMode string) {
	switch f.Type {
	case "number":
		return "number", "numeric"
	case "boolean", "checkbox":
		return "checkbox", ""
	case "date":
		return "date", ""
	case "tel", "email", "url":
		return f.Type, ""
	}
	switch f.Name {
	case "phone_number":
		return "tel", ""
	case "picture":
		return "url", ""
	}
	return "text", ""
}

//go:embed templates/*.html
var templateFiles embed.FS

// templates holds one parsed set per page kind: the layout, the shared blocks and the page's content.
var templates = mustParseTemplates()

func mustParseTemplates() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, kind := range []string{KindSignIn, KindSignUp, KindVerifyCode, KindSignedOut, KindError} {
		m[kind] = template.Must(template.ParseFS(templateFiles, "templates/base.html", "templates/"+kind+".html"))
	}
	return m
}

// Render writes the page as a complete HTML document. It fails, writing nothing, on an unknown kind or on
// a sign-up field whose name is empty, repeated, or one the page posts itself (csrf, email, password, code,
// and j, the journey parameter).
func Render(w io.Writer, p Page) error {
	return render(w, p, shipped)
}

func render(w io.Writer, p Page, cats *catalogs) error {
	t, ok := templates[p.Kind]
	if !ok {
		return fmt.Errorf("rendering page: unknown kind %q", p.Kind)
	}
	v, err := newView(p, cats)
	if err != nil {
		return fmt.Errorf("rendering %s page: %w", p.Kind, err)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "base", v); err != nil {
		return fmt.Errorf("rendering %s page: %w", p.Kind, err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// view is what the templates see.
type view struct {
	Kind, Lang, Dir string
	Title, Company  string
	Logo            template.URL
	CSS             template.CSS
	Action, CSRF    string
	Intro           string
	FormError       string
	Inputs          []input
	Submit          string
	Links           map[string]string
	Message         string
	CorrelationID   string
	loc             *localizer
}

// T is the localized text of a message id, for the templates.
func (v *view) T(id string) string { return v.loc.text(id) }

// input is one <input> with its label, hint and error, ready to print.
type input struct {
	ID, Name, Type, Label   string
	Optional                string
	Hint, Error             string
	Value                   string
	Autocomplete, InputMode string
	Pattern                 string
	MinLength, MaxLength    int
	Required, Checked       bool
	Verbatim                bool // no autocapitalisation or spellchecking: emails, codes
}

// DescribedBy lists the ids of the hint and error, for aria-describedby.
func (in input) DescribedBy() string {
	var ids []string
	if in.Hint != "" {
		ids = append(ids, in.ID+"-hint")
	}
	if in.Error != "" {
		ids = append(ids, in.ID+"-error")
	}
	return strings.Join(ids, " ")
}

func newView(p Page, cats *catalogs) (*view, error) {
	lang := cats.resolve(p.Locale)
	company, logo := brandingOf(p)
	vars := map[string]string{
		"company": company, "email": p.Email,
		"min": strconv.Itoa(MinPasswordLength), "max": strconv.Itoa(MaxPasswordLength),
	}
	for k, a := range p.FormErrorArgs {
		if _, builtin := vars[k]; !builtin {
			vars[k] = a
		}
	}
	loc := cats.newLocalizer(lang, p.Branding.Strings, vars)
	v := &view{
		Kind: p.Kind, Lang: lang, Dir: Dir(lang), Company: company, Logo: logo,
		CSS:    template.CSS(stylesheet(p.Branding.Colors)),
		Action: p.Action, CSRF: p.CSRF, Links: p.Links, CorrelationID: p.CorrelationID, loc: loc,
	}
	switch {
	case p.FormErrorID != "":
		v.FormError = loc.message(p.FormErrorID)
	case p.FormError != "":
		v.FormError = p.FormError
	}
	email := input{ID: "email", Name: FieldEmail, Type: "email", Label: loc.text("email_label"), Value: p.Email,
		Autocomplete: "email", MaxLength: 254, Required: true, Verbatim: true, Error: errText(loc, p.EmailError)}
	switch p.Kind {
	case KindSignIn:
		v.Title, v.Intro, v.Submit = loc.text("sign_in_title"), loc.text("sign_in_intro"), loc.text("sign_in_submit")
		// "username" rather than "email" on sign-in: the token password managers key saved credentials on.
		email.Autocomplete = "username"
		v.Inputs = []input{email, {ID: "password", Name: FieldPassword, Type: "password", Label: loc.text("password_label"),
			Autocomplete: "current-password", Required: true, Error: errText(loc, p.PasswordError)}}
	case KindSignUp:
		v.Title, v.Intro, v.Submit = loc.text("sign_up_title"), loc.text("sign_up_intro"), loc.text("sign_up_submit")
		v.Inputs = []input{email, {ID: "password", Name: FieldPassword, Type: "password", Label: loc.text("new_password_label"),
			Hint: loc.text("new_password_hint"), Autocomplete: "new-password", MinLength: MinPasswordLength,
			MaxLength: MaxPasswordLength, Required: true, Error: errText(loc, p.PasswordError)}}
		names := map[string]bool{FieldCSRF: true, FieldEmail: true, FieldPassword: true, FieldCode: true, "j": true}
		ids := map[string]bool{}
		for i, f := range p.Fields {
			if f.Name == "" || names[f.Name] {
				return nil, fmt.Errorf("sign-up field name %q is empty, reserved or repeated", f.Name)
			}
			names[f.Name] = true
			in := attributeInput(f, loc)
			if ids[in.ID] { // two names that differ only in characters an id cannot hold
				in.ID += "-" + strconv.Itoa(i)
			}
			ids[in.ID] = true
			v.Inputs = append(v.Inputs, in)
		}
	case KindVerifyCode:
		v.Title, v.Submit = loc.text("verify_code_title"), loc.text("verify_code_submit")
		v.Intro = loc.text("verify_code_intro")
		if p.Email == "" {
			v.Intro = loc.text("verify_code_intro_generic")
		}
		v.Inputs = []input{{ID: "code", Name: FieldCode, Type: "text", Label: loc.text("code_label"), Hint: loc.text("code_hint"),
			Autocomplete: "one-time-code", InputMode: "numeric", Pattern: "[0-9]{6,8}", MinLength: 6, MaxLength: 8,
			Required: true, Verbatim: true, Error: errText(loc, p.CodeError)}}
	case KindSignedOut:
		v.Title, v.Intro = loc.text("signed_out_title"), loc.text("signed_out_body")
	case KindError:
		v.Title = loc.text("error_title")
		v.Message = loc.message(p.Message)
		if p.Message == "" {
			v.Message = loc.text("generic_error")
		}
	}
	return v, nil
}

func errText(loc *localizer, id string) string {
	if id == "" {
		return ""
	}
	return loc.message(id)
}

// attributeInput is the input of one sign-up attribute.
func attributeInput(f Field, loc *localizer) input {
	typ, mode := inputType(f)
	in := input{ID: "attr-" + idSafe(f.Name), Name: f.Name, Type: typ, InputMode: mode, Value: f.Value,
		Required: f.Required, Error: errText(loc, f.Error)}
	in.Label = attributeLabel(f, loc)
	if !f.Required && typ != "checkbox" { // an unticked box is the natural answer: no need to say so
		in.Optional = loc.text("optional")
	}
	switch typ {
	case "checkbox":
		in.Checked = f.Value == "true" || f.Value == "on" || f.Value == "1"
		in.Value = ""
	case "text", "tel", "email", "url":
		in.Pattern = f.Pattern // the pattern attribute applies to text-like inputs only
		in.Autocomplete = f.Autocomplete
		if in.Autocomplete == "" {
			in.Autocomplete = AutocompleteToken(f.Name)
		}
	default: // number, date
		in.Autocomplete = f.Autocomplete
		if in.Autocomplete == "" {
			in.Autocomplete = AutocompleteToken(f.Name)
		}
	}
	return in
}

// attributeLabel: the tenant's string for this locale, else the label the flow gave, else the built-in's
// label, else the name made readable.
func attributeLabel(f Field, loc *localizer) string {
	id := "attr_" + f.Name
	if s, ok := loc.tenant[id]; ok && s != "" {
		return s
	}
	if strings.TrimSpace(f.Label) != "" {
		return f.Label
	}
	if s, ok := loc.lookup(id); ok {
		return s
	}
	s := strings.ReplaceAll(f.Name, "_", " ")
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}

// idSafe keeps an attribute name usable as part of an element id.
func idSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, name)
}
