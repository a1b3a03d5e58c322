package keyring

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// TestVerifyDetachedReceiptVector runs docs/protocol.md §3.9 (g): the
// receipt verifies over the exact header bytes with receipts@example.net's
// key, and not over the bytes changed by one, nor with another key.
func TestVerifyDetachedReceiptVector(t *testing.T) {
	t.Parallel()
	const dir = "../conformance/testdata/vectors/"
	read := func(name string) []byte {
		b, err := os.ReadFile(dir + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(read("receipt-server-key.asc")))
	if err != nil || len(keys) != 1 {
		t.Fatalf("key: %v", err)
	}
	header := read("receipt-header.json")
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(read("receipt-signature.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyDetached(keys[0], header, sig); err != nil {
		t.Fatalf("the vector's receipt does not verify: %v", err)
	}
	changed := bytes.Replace(header, []byte(`"size":62`), []byte(`"size":63`), 1)
	if VerifyDetached(keys[0], changed, sig) == nil {
		t.Error("the receipt verifies over a changed header")
	}
	if VerifyDetached(keys[0], bytes.TrimSuffix(header, []byte("\n")), sig) == nil {
		t.Error("the receipt verifies without the header's final LF")
	}
	other, err := LoadOrCreateServiceKey(t.TempDir()+"/o.key", "receipts@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if VerifyDetached(other, header, sig) == nil {
		t.Error("the receipt verifies with another key")
	}
}
