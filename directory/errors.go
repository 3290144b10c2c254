package directory

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the admin API's error bodies, so they keep their meaning.
const (
	CodeConflict = "conflict"  // a uniqueness rule refused the change (HTTP 409)
	CodeNotFound = "not_found" // the record does not exist (HTTP 404)
	CodeInvalid  = "invalid"   // the command is malformed (HTTP 400)
)

// Error is a refusal decided by the state machine. It crosses the network (a forwarded write returns it),
// so it is plain data; the message is safe to show to an operator.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrConflict) work for any conflict.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// Sentinels for errors.Is.
var (
	ErrConflict = &Error{Code: CodeConflict}
	ErrNotFound = &Error{Code: CodeNotFound}
	ErrInvalid  = &Error{Code: CodeInvalid}
)

func conflict(format string, a ...any) error {
	return &Error{Code: CodeConflict, Message: fmt.Sprintf(format, a...)}
}
func notFound(format string, a ...any) error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, a...)}
}
func invalid(format string, a ...any) error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, a...)}
}

// AsError returns the state machine's refusal inside err, if there is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
