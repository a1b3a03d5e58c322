package protocol

import (
	"errors"
	"fmt"
)

// ErrMalformed means bytes from the wire break a rule of docs/protocol.md
// §3: a server answers 400 for a ticket request, 422 for a header.
var ErrMalformed = errors.New("malformed")

// malformedError is an ErrMalformed whose message is exactly msg, so that
// answers keep the wording senders see (e.g. "sender: required").
type malformedError struct{ msg string }

func (e *malformedError) Error() string        { return e.msg }
func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

// malformedf returns an error wrapping ErrMalformed with the given message.
func malformedf(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON of every error answer, {"error": "…"}, with "part"
// naming the header, the catalog or a part id in a 422 answer to complete
// (§3.6).
type ErrorBody struct {
	Error string `json:"error"`
	Part  string `json:"part,omitempty"`
}
