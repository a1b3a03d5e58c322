package conformance_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"tollbridge/internal/dnstest"
)

// TestBridgeDiscovery: §3.1 "a configured route first, then the DNS SRV
// record _tollbridge._tcp.DOMAIN, else the domain is legacy". A real
// `bridge serve` for example.net, its [dns] resolver a test zone on
// loopback, sends bob's mail to three domains:
//   - example.org has no route and an SRV record naming example.com (an
//     address record: 127.0.0.1) and the port of this suite's peer: the
//     mail is delivered there over the ticketed protocol;
//   - routed.example has a route to another peer and an SRV record naming a
//     decoy: the route wins, the decoy hears nothing;
//   - legacy.example has neither: the mail goes out over SMTP (smarthost).
//
// SRV targets are reached with the system's roots, as on the Internet:
// SSL_CERT_FILE gives `bridge serve` the peers' test certificate, which
// names example.com.
func TestBridgeDiscovery(t *testing.T) {
	t.Parallel()
	bin := buildBridge(t, t.TempDir())
	srvPeer := newPeer(t, "example.org", 6, 2)
	srvPeer.users["alice@example.org"] = newKey(t, "alice@example.org")
	routed := newPeer(t, "routed.example", 6, 2)
	routed.users["ruth@routed.example"] = newKey(t, "ruth@routed.example")
	var decoyHits atomic.Int32
	decoy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		decoyHits.Add(1)
		http.Error(w, `{"error": "decoy"}`, http.StatusNotFound)
	}))
	t.Cleanup(decoy.Close)

	zone := dnstest.New(t)
	zone.SetSRV("_tollbridge._tcp.example.org", dnstest.SRV{Priority: 0, Weight: 1, Port: portOf(t, srvPeer.srv), Target: "example.com."})
	zone.SetSRV("_tollbridge._tcp.routed.example", dnstest.SRV{Priority: 0, Weight: 1, Port: portOf(t, decoy), Target: "example.com."})
	zone.SetAddr("example.com", "127.0.0.1")
	relay := startRelay(t)
	b := startBridgeWith(t, bin, "example.net", []string{"bob@example.net"}, 8, 2,
		[]route{{"routed.example", routed.srv.URL, routed.caFile}}, relay.addr,
		bridgeExtra{config: fmt.Sprintf("\n[dns]\nresolver = %q\n", zone.Addr()), env: []string{"SSL_CERT_FILE=" + srvPeer.caFile}})
	const bob, bobPW = "bob@example.net", "pw-bob@example.net"

	t.Run("SRV", func(t *testing.T) {
		submit(t, b.submission, bob, bobPW, []string{"alice@example.org"}, plainText("srv.conformance"))
		tk := srvPeer.awaitCompleted(t, 1)[0]
		if tk.recipient != hashAddr(t, "alice@example.org") {
			t.Errorf("the peer found by SRV got a ticket for %s, want hash(alice@example.org)", tk.recipient)
		}
		if zone.Queries("_tollbridge._tcp.example.org") == 0 {
			t.Errorf("delivered to example.org without asking for its SRV record")
		}
	})

	t.Run("route wins over SRV", func(t *testing.T) {
		msg := strings.Replace(plainText("route.conformance"), "To: alice@example.org", "To: ruth@routed.example", 1)
		submit(t, b.submission, bob, bobPW, []string{"ruth@routed.example"}, msg)
		tk := routed.awaitCompleted(t, 1)[0]
		if tk.recipient != hashAddr(t, "ruth@routed.example") {
			t.Errorf("the routed peer got a ticket for %s, want hash(ruth@routed.example)", tk.recipient)
		}
		if n := decoyHits.Load(); n != 0 {
			t.Errorf("the server named by routed.example's SRV record got %d requests, though a route is configured (§3.1 \"a configured route first\")", n)
		}
	})

	t.Run("legacy", func(t *testing.T) {
		msg := strings.Replace(plainText("legacy-dns.conformance"), "To: alice@example.org", "To: frank@legacy.example", 1)
		submit(t, b.submission, bob, bobPW, []string{"frank@legacy.example"}, msg)
		got := relay.await(t)
		if !bytes.Contains(got, []byte("legacy-dns.conformance")) {
			t.Errorf("relayed something else than the mail to a domain with no route and no SRV record:\n%.400s", got)
		}
		if zone.Queries("_tollbridge._tcp.legacy.example") == 0 {
			t.Errorf("legacy.example was taken as legacy without asking for its SRV record")
		}
	})
}

// portOf is the port an httptest server listens on.
func portOf(t *testing.T, s *httptest.Server) uint16 {
	t.Helper()
	return uint16(s.Listener.Addr().(*net.TCPAddr).Port)
}
