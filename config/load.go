package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Default returns the embedded defaults: loopback listeners, SQLite in
// "data", a self-signed certificate under data/tls.
func Default() *Config {
	return &Config{
		Server: Server{Hostname: "localhost", DataDir: "data", SubaddressSeparator: "+"},
		TLS:    TLS{Cert: "data/tls/cert.pem", Key: "data/tls/key.pem"},
		SMTP: SMTP{
			Submission:      "127.0.0.1:1587",
			MaxMessageBytes: 50 << 20,
			MaxRecipients:   100,
			Timeout:         Duration{5 * time.Minute},
		},
		IMAP: IMAP{Listen: "127.0.0.1:1143"},
		Ticket: Ticket{
			Listen: "127.0.0.1:8443", PowBits: 20, PowCount: 4,
			Worktypes: []string{"pow"}, EquihashN: 114, EquihashK: 5, EquihashCount: 3,
			Expiry: Duration{30 * time.Minute}, RatePerMinute: 600,
			MaxPendingBytesPerClient: 256 << 20, MaxPendingBytes: 2 << 30,
			MinUploadRate: 8 << 10, UploadRateWindow: Duration{30 * time.Second},
		},
		Delivery: Delivery{
			Workers:      8,
			RetryFor:     Duration{48 * time.Hour},
			SmarthostTLS: "starttls",
		},
		Store: Store{S3TLS: true},
	}
}

// Load reads the TOML file at path over the defaults, resolves relative
// paths against the file's folder and validates the result. The error, if
// any, is an Errors listing every problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load for data already read from the file at path.
func Parse(data []byte, path string) (*Config, error) {
	c := Default()
	c.File = path
	name := filepath.Base(path)
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, decodeErrors(name, string(data), err)
	}
	var errs Errors
	for _, k := range md.Undecoded() {
		errs = append(errs, &FieldError{File: name, Key: k.String(), Msg: "unknown key"})
	}
	errs = append(errs, c.validate(name)...)
	if len(errs) > 0 {
		return nil, errs
	}
	c.resolvePaths(filepath.Dir(path))
	return c, nil
}

// decodeErrors turns a TOML decoding error into the admin's terms: a
// syntax error with its line, or every value of the wrong type, each as
// "config.toml:27: ticket.pow_bits must be an integer".
func decodeErrors(name, data string, err error) Errors {
	if _, synErr := toml.Decode(data, &map[string]any{}); synErr != nil {
		return Errors{syntaxError(name, synErr)}
	}
	if errs := typeErrors(name, data); len(errs) > 0 {
		return errs
	}
	return Errors{fmt.Errorf("%s: %w", name, err)}
}

// syntaxError names the file and, where the library knows it, the line.
func syntaxError(name string, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", name, err)
	}
	msg := pe.Message
	if pe.LastKey != "" {
		msg += " (after key " + pe.LastKey + ")"
	}
	return &FieldError{File: name, Line: pe.Position.Line, Msg: msg}
}

// resolvePaths makes every file path absolute, relative ones taken from dir.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{
		&c.Server.DataDir, &c.TLS.Cert, &c.TLS.Key,
		&c.Delivery.SmarthostPasswordFile, &c.Delivery.SmarthostCA,
	} {
		*p = resolve(dir, *p)
	}
	for i := range c.Routes {
		c.Routes[i].CA = resolve(dir, c.Routes[i].CA)
	}
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(filepath.Join(dir, p))
	if err != nil {
		return filepath.Join(dir, p)
	}
	return abs
}

// FieldError is one problem with one key of one file.
type FieldError struct {
	File string // base name of the config file
	Line int    // line in File, 0 if not known
	Key  string // dotted key, e.g. "ticket.pow_bits"
	Msg  string
}

// Error is "file: key: msg", or with a line "file:line: key msg" (the
// compiler's way, so editors jump to it).
func (e *FieldError) Error() string {
	switch {
	case e.Line > 0 && e.Key == "":
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s %s", e.File, e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

// Errors collects every problem found in one file.
type Errors []error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error { return es }

// RouteFor returns the configured route for domain, if any.
func (c *Config) RouteFor(domain string) (Route, bool) {
	domain = strings.ToLower(domain)
	for _, r := range c.Routes {
		if strings.EqualFold(r.Domain, domain) {
			return r, true
		}
	}
	return Route{}, false
}

// IsLocalDomain reports whether domain is one of the bridge's own domains.
func (c *Config) IsLocalDomain(domain string) bool {
	for _, d := range c.Server.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}
