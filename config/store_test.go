package config

import (
	"strings"
	"testing"
)

func TestStoreS3Keys(t *testing.T) {
	t.Parallel()
	base := "[server]\nhostname = \"mail.example.org\"\ndomains = [\"example.org\"]\n[store]\n"
	for _, tc := range []struct{ body, wantErr string }{
		{``, ""},
		{`s3_endpoint = "127.0.0.1:8333"` + "\n" + `s3_bucket = "tb-parts"` + "\ns3_tls = false", ""},
		{`s3_endpoint = "s3.example.org:443"` + "\n" + `s3_bucket = "a.b-c"`, ""},
		{`s3_bucket = "parts"`, "store.s3_bucket: needs store.s3_endpoint"},
		{`s3_endpoint = "127.0.0.1:8333"`, "store.s3_bucket: must be set"},
		{`s3_endpoint = "s3.example.org"` + "\n" + `s3_bucket = "parts"`, "store.s3_endpoint: must be host:port"},
		{`s3_endpoint = "s3.example.org:0"` + "\n" + `s3_bucket = "parts"`, "store.s3_endpoint: must be host:port"},
		{`s3_endpoint = "s3.example.org:443"` + "\n" + `s3_bucket = "Parts"`, "store.s3_bucket: must be 3 to 63"},
		{`s3_endpoint = "s3.example.org:443"` + "\n" + `s3_bucket = "-parts"`, "store.s3_bucket: must be 3 to 63"},
		{`s3_endpoint = "s3.example.org:443"` + "\n" + `s3_bucket = "p"`, "store.s3_bucket: must be 3 to 63"},
		{`s3_tls = "yes"`, "store.s3_tls must be true or false"},
	} {
		c, err := Parse([]byte(base+tc.body+"\n"), "config.toml")
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.body, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.wantErr)
		case tc.body == "" && !c.Store.S3TLS:
			t.Errorf("s3_tls is false by default")
		}
	}
}
