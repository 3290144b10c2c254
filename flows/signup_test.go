package flows

import (
	"testing"

	"postern.dev/postern/directory"
)

func TestValidateSignUp(t *testing.T) {
	cfg := directory.SignUp{Attributes: []directory.AttributeDef{
		{Name: "given_name", Required: true},
		{Name: "loyalty_id", Pattern: "[0-9]{8}"},
		{Name: "age", Type: "number"},
		{Name: "birthday", Type: "date"},
		{Name: "terms", Type: "boolean", Required: true},
	}}
	tests := []struct {
		name   string
		in     SignUpInput
		errors map[string]string
	}{
		{"all good", SignUpInput{Email: "Ann@Example.com", Attributes: map[string]string{"given_name": "Ann", "loyalty_id": "12345678", "age": "42", "birthday": "1990-02-03", "terms": "on"}}, nil},
		{"optional left out", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"given_name": "Ann", "terms": "true"}}, nil},
		{"missing required", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"terms": "on"}}, map[string]string{"given_name": "required"}},
		{"blank is missing", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"given_name": "   ", "terms": "on"}}, map[string]string{"given_name": "required"}},
		{"pattern is anchored", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"given_name": "A", "terms": "on", "loyalty_id": "123456789"}}, map[string]string{"loyalty_id": "pattern_mismatch"}},
		{"not a number", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"given_name": "A", "terms": "on", "age": "forty"}}, map[string]string{"age": "number_invalid"}},
		{"not a date", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"given_name": "A", "terms": "on", "birthday": "03/02/1990"}}, map[string]string{"birthday": "date_invalid"}},
		{"terms not accepted", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"given_name": "A"}}, map[string]string{"terms": "required"}},
		{"bad email", SignUpInput{Email: "not-an-email", Attributes: map[string]string{"given_name": "A", "terms": "on"}}, map[string]string{"email": "email_invalid"}},
		{"control characters", SignUpInput{Email: "a@example.com", Attributes: map[string]string{"given_name": "A\x00", "terms": "on"}}, map[string]string{"given_name": "pattern_mismatch"}},
	}
	for _, tc := range tests {
		r := ValidateSignUp(cfg, tc.in)
		if len(r.Errors) != len(tc.errors) {
			t.Errorf("%s: errors %v, want %v", tc.name, r.Errors, tc.errors)
			continue
		}
		for k, v := range tc.errors {
			if r.Errors[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, r.Errors[k], v)
			}
		}
	}
	r := ValidateSignUp(cfg, tests[0].in)
	if r.Email != "ann@example.com" || r.Profile.GivenName != "Ann" || r.Attributes["loyalty_id"] != "12345678" ||
		r.Attributes["age"] != 42.0 || r.Attributes["terms"] != true || r.Attributes["birthday"] != "1990-02-03" {
		t.Errorf("values: %+v", r)
	}
}
