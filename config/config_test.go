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
		if section == "route" || section == "alias" {
			header = "[[" + section + "]]"
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
	if err == nil || !strings.HasPrefix(err.Error(), "config.toml:2: ") {
		t.Fatalf("err = %v", err)
	}
}

// TestTypeErrors: every value of the wrong type is reported with its line
// and key in the admin's words, not the TOML library's Go types.
func TestTypeErrors(t *testing.T) {
	t.Parallel()
	src := `[server]
domains = ["example.org"]
data_dir = 5
[ticket]
pow_bits = "20"
expiry = "30 minutes"
pow_count = true
[delivery]
retry_for = 48
[[route]]
domain = "example.net"
url = 7
`
	_, err := Parse([]byte(src), "/etc/tollbridge/config.toml")
	want := []string{
		`config.toml:3: server.data_dir must be a string in quotes`,
		`config.toml:5: ticket.pow_bits must be an integer`,
		`config.toml:6: ticket.expiry must be a duration in quotes, such as "30m" or "48h": time: unknown unit`,
		`config.toml:7: ticket.pow_count must be an integer`,
		`config.toml:9: delivery.retry_for must be a duration in quotes`,
		`config.toml:12: route[0].url must be a string in quotes`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want %q", i, lines[i], w)
		}
	}
	if strings.Contains(err.Error(), "incompatible types") || strings.Contains(err.Error(), "destination") {
		t.Errorf("the library's words leak out:\n%v", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 3 || fe.Key != "server.data_dir" {
		t.Errorf("first FieldError = %+v", fe)
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

// TestAddressKeys: aliases, catch-alls, postmaster and the subaddress
// separator are read, and their mistakes named by file and key.
func TestAddressKeys(t *testing.T) {
	t.Parallel()
	good := `
[server]
hostname = "mail.example.org"
domains = ["example.org"]
postmaster = ["alice@example.org"]
catch_all = { "example.org" = "alice@example.org" }
subaddress_separator = "+-"
[[alias]]
address = "team@example.org"
targets = ["alice@example.org", "bob@example.org"]
`
	c, err := Parse([]byte(good), "/etc/tollbridge/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.CatchAll["example.org"] != "alice@example.org" || len(c.Aliases) != 1 || c.Server.SubaddressSeparator != "+-" || !c.IsAlias("Team@example.org") {
		t.Fatalf("parsed %+v %+v", c.Server, c.Aliases)
	}
	if d := Default(); d.Server.SubaddressSeparator != "+" {
		t.Errorf("default separator %q", d.Server.SubaddressSeparator)
	}
	bad := `
[server]
hostname = "mail.example.org"
domains = ["example.org"]
postmaster = ["nobody"]
catch_all = { "example.net" = "alice@example.org" }
subaddress_separator = "@"
[[alias]]
address = "a@example.org"
targets = ["b@example.org"]
[[alias]]
address = "b@example.org"
targets = ["a@example.org"]
[[alias]]
address = "x@elsewhere.example"
targets = []
[[alias]]
address = "receipts@example.org"
targets = ["a@example.org"]
`
	_, err = Parse([]byte(bad), "/etc/tollbridge/config.toml")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`config.toml: server.postmaster[0]: not a mail address`,
		`config.toml: server.catch_all."example.net": "example.net" is not one of server.domains`,
		`config.toml: server.subaddress_separator: must be`,
		`config.toml: alias[0].targets: alias loop (at most 8 deep): a@example.org -> b@example.org -> a@example.org`,
		`config.toml: alias[2].address: x@elsewhere.example: "elsewhere.example" is not one of server.domains`,
		`config.toml: alias[2].targets: alias x@elsewhere.example needs at least one target`,
		`config.toml: alias[3].address: receipts@example.org: the local part receipts is reserved`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
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
