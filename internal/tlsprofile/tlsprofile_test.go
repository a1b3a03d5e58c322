package tlsprofile

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestOnlyAEADSuites(t *testing.T) {
	t.Parallel()
	c := Apply(&tls.Config{MinVersion: tls.VersionTLS13})
	if c.MinVersion != tls.VersionTLS13 {
		t.Error("Apply lowered MinVersion")
	}
	if Apply(&tls.Config{}).MinVersion != tls.VersionTLS12 {
		t.Error("TLS 1.2 is not the minimum")
	}
	for _, id := range CipherSuites() {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("%s offered", name)
		}
	}
}
