package main

import (
	"testing"
	"time"
)

// TestAliasAndSubaddressBetweenBridges: mail from one bridge to an alias
// and to a subaddress at another takes the ticketed path and reaches the
// user behind them: the receiving WKD serves the user's key for those
// addresses and the sending bridge accepts it as the domain's word.
func TestAliasAndSubaddressBetweenBridges(t *testing.T) {
	t.Parallel()
	s := startSites(t, t.TempDir(), twoSites(), "", 4, 1)
	b := s.bridges[1]
	a, err := checkAlias(t.Context(), b.cfg, b.st, "sales@example.net", []string{"bob@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.AddAlias(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"sales@example.net", "bob+lists@example.net"} {
		if err := s.submit(0, "alice@example.org", "pw-alice@example.org", []string{rcpt},
			plainMessage("alice@example.org", rcpt, "to."+rcpt)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both messages at bob's", 30*time.Second, func() bool { return s.unfiled(1, "bob@example.net") == 2 })
	ds, _ := s.bridges[0].st.Deliveries(t.Context(), 10)
	for _, d := range ds {
		if d.Outcome != "delivered" {
			t.Errorf("delivery %+v", d)
		}
	}
}
