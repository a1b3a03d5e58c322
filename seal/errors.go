package seal

import (
	"errors"
	"fmt"

	"tollbridge/protocol"
)

// Errors returned by this package wrap one of these sentinels; test with
// errors.Is.
var (
	// ErrMalformed means the input is not a message of our OpenPGP profile:
	// bad framing, unexpected, missing or extra packets, a compression
	// packet, an unsupported algorithm or version, or a bad header field.
	// It is protocol.ErrMalformed, so that one test covers both packages.
	ErrMalformed = protocol.ErrMalformed
	// ErrTampered means an integrity check failed: the MDC of an encrypted
	// packet does not match (the ciphertext was altered or truncated, or the
	// session key is wrong), or a session key failed to unwrap with the key
	// it names.
	ErrTampered = errors.New("integrity check failed")
	// ErrWrongKey means the private key given has no (unlocked) key able to
	// unwrap the session key.
	ErrWrongKey = errors.New("no matching private key")
	// ErrTooLarge means a catalog's plaintext exceeds the caller's limit.
	ErrTooLarge = errors.New("too large")
)

// malformed wraps ErrMalformed with a description and an optional cause.
func malformed(what string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, cause)
}

// tampered wraps ErrTampered with a description and an optional cause.
func tampered(what string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %s", ErrTampered, what)
	}
	return fmt.Errorf("%w: %s: %w", ErrTampered, what, cause)
}

// recoverMalformed turns a panic inside a third-party parser fed with
// untrusted bytes into an ErrMalformed error, so that hostile input can
// never crash the bridge. Use in exported functions as
// defer recoverMalformed(&err, "what").
func recoverMalformed(err *error, context string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("seal: %s: %w", context, malformed(fmt.Sprintf("parser panic: %v", r), nil))
	}
}
