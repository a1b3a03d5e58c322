package keyring

import "log/slog"

// LogLoginFailed logs a failed or refused login in the one form that SMTP
// and IMAP share and contrib/fail2ban/filter.d/tollbridge.conf matches:
// message "login failed", then proto ("smtp", "imap"), then ip (the
// client's address), then user as the client gave it, then reason. The
// address comes before anything the client chose, and slog quotes and
// escapes the user name, so a crafted name cannot make the filter ban
// somebody else's address. Warn, so that it is kept at every log level
// an admin is likely to choose.
func LogLoginFailed(log *slog.Logger, proto, ip, user, reason string) {
	log.Warn("login failed", "proto", proto, "ip", ip, "user", user, "reason", reason)
}

// Reasons for LogLoginFailed.
const (
	LoginBadCredentials = "bad credentials" // unknown user, bad password or bad address
	LoginThrottled      = "throttled"       // refused by the Guard before any check
)
