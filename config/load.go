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
			Listen: "127.0.0.1:8443", PowBits: 20, PowCount: 4, Expiry: Duration{30 * time.Minute}, RatePerMinute: 600,
			MaxPendingBytesPerClient: 256 << 20, MaxPendingBytes: 2 << 30,
			MinUploadRate: 8 << 10, UploadRateWindow: Duration{30 * time.Second},
		},
		Delivery: Delivery{
			Workers:      8,
			RetryFor:     Duration{48 * time.Hour},
			SmarthostTLS: "starttls",
		},
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
		return nil, Errors{decodeError(name, err)}
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

// decodeError turns a TOML syntax or type error into one naming the file
// and, where the library knows them, the line and key.
func decodeError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		key := fmt.Sprintf("line %d", pe.Position.Line)
		if pe.LastKey != "" {
			key = pe.LastKey + " (" + key + ")"
		}
		return &FieldError{File: name, Key: key, Msg: pe.Message}
	}
	return fmt.Errorf("%s: %w", name, err)
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
	Key  string // dotted key, e.g. "ticket.pow_bits"
	Msg  string
}

func (e *FieldError) Error() string {
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
