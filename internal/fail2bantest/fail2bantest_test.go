package fail2bantest

import (
	"bytes"
	"log/slog"
	"testing"

	"tollbridge/keyring"
)

// The filter finds the client's address in lines written through
// keyring.LogLoginFailed for IPv4, IPv6 and IPv4-mapped clients, with the
// extra fields cmd/bridge's loggers carry (quickstart adds bridge=), in
// both log formats.
func TestFilterAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ip, want string }{
		{"203.0.113.5", "203.0.113.5"},
		{"2001:db8::1", "2001:db8::1"},
		{"::1", "::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
	} {
		var text, json bytes.Buffer
		log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&text, nil), slog.NewJSONHandler(&json, nil)))
		keyring.LogLoginFailed(log.With("bridge", "example.org", "listener", "imap"), "imap", tc.ip, "u@example.org", keyring.LoginBadCredentials)
		CheckLines(t, text.String(), 1, tc.want)
		CheckLines(t, json.String(), 1, tc.want)
	}
}
