package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleParses(t *testing.T) {
	t.Parallel()
	c, err := Load("../config.toml.example")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if c.Ticket.PowBits != 20 || c.Ticket.Expiry.Duration != 30*time.Minute {
		t.Errorf("ticket = %+v", c.Ticket)
	}
	if r, ok := c.RouteFor("EXAMPLE.net"); !ok || r.URL != "https://127.0.0.1:9443" || !filepath.IsAbs(r.CA) {
		t.Errorf("route = %+v, %v", r, ok)
	}
	if !filepath.IsAbs(c.Server.DataDir) || !filepath.IsAbs(c.TLS.Cert) {
		t.Errorf("paths not resolved: %q %q", c.Server.DataDir, c.TLS.Cert)
	}
}

// TestExampleDocumentsEveryKey keeps config.toml.example and the structs in
// step: every key the structs accept appears in the example and vice versa
// (the latter is Load's unknown-key check).
func TestExampleDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, key := range keysOf(reflect.TypeOf(Config{}), "") {
		section, name, _ := strings.Cut(key, ".")
		header := "[" + section + "]"
		if section == "route" {
			header = "[[route]]"
		}
		i := strings.Index(text, header)
		if i < 0 || !strings.Contains(text[i:], "\n"+name+" ") {
			t.Errorf("config.toml.example does not document %s", key)
		}
	}
}

func keysOf(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration{}) {
			keys = append(keys, keysOf(ft, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

func TestErrorsNameFileAndKey(t *testing.T) {
	t.Parallel()
	src := `
[server]
hostname = "mail.example.org"
domains = ["example.org", "bad domain"]
colour = "blue"
[ticket]
pow_bits = 99
expiry = "10s"
[delivery]
smarthost_tls = "maybe"
[[route]]
domain = "example.net"
url = "http://insecure.example.net"
`
	_, err := Parse([]byte(src), "/etc/tollbridge/config.toml")
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`config.toml: ticket.pow_bits: must be 0..40, got 99`,
		`config.toml: server.colour: unknown key`,
		`config.toml: server.domains[1]: not a valid domain name: "bad domain"`,
		`config.toml: ticket.expiry: must be between`,
		`config.toml: delivery.smarthost_tls: must be`,
		`config.toml: route[0].url: must be an https://`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("errors.As FieldError failed")
	}
}

func TestSyntaxError(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("[server]\nhostname = \n"), "x/config.toml")
	if err == nil || !strings.HasPrefix(err.Error(), "config.toml: ") {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse([]byte("[ticket]\npow_bits = \"many\"\n"), "config.toml")
	if err == nil || !strings.Contains(err.Error(), "ticket.pow_bits") {
		t.Fatalf("type error does not name key: %v", err)
	}
}

func TestDefaultsNeedADomain(t *testing.T) {
	t.Parallel()
	_, err := Parse(nil, "config.toml")
	if err == nil || !strings.Contains(err.Error(), "server.domains: at least one") {
		t.Fatalf("err = %v", err)
	}
	c, err := Parse([]byte("[server]\ndomains=[\"Example.ORG\"]\n"), "/tmp/c/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Domains[0] != "example.org" || c.Server.DataDir != "/tmp/c/data" || !c.IsLocalDomain("EXAMPLE.org") {
		t.Errorf("defaults: %+v", c.Server)
	}
}

// TestUploadBounds: the ticket API's upload bounds have defaults that fit
// the default message size, and are checked against it.
func TestUploadBounds(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("[server]\ndomains=[\"example.org\"]\n"), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if tk := c.Ticket; tk.MaxPendingBytesPerClient != 256<<20 || tk.MaxPendingBytes != 2<<30 || tk.MinUploadRate != 8192 || tk.UploadRateWindow.Duration != 30*time.Second {
		t.Errorf("defaults: %+v", tk)
	}
	_, err = Parse([]byte(`[server]
domains = ["example.org"]
[smtp]
max_message_bytes = 209715200
[ticket]
max_pending_bytes = 1000
min_upload_rate = -1
upload_rate_window = "10ms"
`), "config.toml")
	for _, w := range []string{
		"ticket.max_pending_bytes_per_client: must be at least 2 * smtp.max_message_bytes (419430400)",
		"ticket.max_pending_bytes: must be at least ticket.max_pending_bytes_per_client",
		"ticket.min_upload_rate: must be 0..",
		"ticket.upload_rate_window: must be between",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestDNSResolver(t *testing.T) {
	t.Parallel()
	base := "[server]\nhostname = \"mail.example.org\"\ndomains = [\"example.org\"]\n[dns]\n"
	for _, tc := range []struct{ value, wantErr string }{
		{"", ""},
		{"127.0.0.1:53", ""},
		{"[::1]:5353", ""},
		{"ns.example.org:53", ""},
		{"127.0.0.1", `dns.resolver: must be host:port`},
		{":53", `dns.resolver: must be host:port`},
		{"127.0.0.1:0", `dns.resolver: port must be 1..65535`},
		{"127.0.0.1:domain", `dns.resolver: port must be 1..65535`},
	} {
		c, err := Parse([]byte(base+"resolver = \""+tc.value+"\"\n"), "config.toml")
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case tc.wantErr == "" && c.DNS.Resolver != tc.value:
			t.Errorf("%q: read as %q", tc.value, c.DNS.Resolver)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "config.toml: "+tc.wantErr)):
			t.Errorf("%q: error %v, want %q", tc.value, err, tc.wantErr)
		}
	}
}
