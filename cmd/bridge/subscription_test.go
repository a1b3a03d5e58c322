package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestListSubscriptionsNeedNoWork is issue 16's item 1 between two real
// bridges: subscribers on example.net mail list-subscribe@example.org from
// an ordinary SMTP client; their bridge mints a subscription id and offers
// it in the signed ticket request, the list's bridge holds it, and then
// the list's mail to every subscriber gets a no-work ticket, while the
// same mail to non-subscribers costs work, as it does to a subscriber who
// has unsubscribed (the revoked id falls back to work). Work is counted by
// the receiving bridge's tickets made valid by proof-of-work.
func TestListSubscriptionsNeedNoWork(t *testing.T) {
	t.Parallel()
	subscribers, strangers := 500, 50
	if testing.Short() {
		subscribers, strangers = 20, 5
	}
	if n, err := strconv.Atoi(os.Getenv("TOLLBRIDGE_SUBSCRIBERS")); err == nil && n > 0 {
		subscribers = n
	}
	s := startSites(t, t.TempDir(), twoSites(), "", 4, 1)
	list, net := s.bridges[0], s.bridges[1]
	listPW := s.addUser(0, "list@example.org")
	for _, alias := range []string{"list-subscribe@example.org", "list-unsubscribe@example.org"} {
		a, err := checkAlias(t.Context(), list.cfg, list.st, alias, []string{"list@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		if err := list.st.AddAlias(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	subs, others := addUsers(s, "sub", subscribers), addUsers(s, "non", strangers)

	for addr, pw := range subs {
		if err := s.submit(1, addr, pw, []string{"list-subscribe@example.org"},
			plainMessage(addr, "list-subscribe@example.org", "subscribe."+addr)); err != nil {
			t.Fatal(err)
		}
	}
	waitForEvery(t, "the subscribe mails at the list's bridge", 5*time.Minute, 200*time.Millisecond,
		func() bool { return s.unfiled(0, "list@example.org") == subscribers })

	validated := func() float64 { return metric(t, net, "tollbridge_tickets_validated_total") }
	received := func() float64 { return metric(t, net, "tollbridge_messages_received_total") }
	mailList := func(what string, rcpts []string) float64 {
		t.Helper()
		before, got := validated(), received()
		for i := 0; i < len(rcpts); i += 100 {
			batch := rcpts[i:min(i+100, len(rcpts))]
			if err := s.submit(0, "list@example.org", listPW, batch,
				plainMessage("list@example.org", "list@example.org", fmt.Sprintf("%s.%d", what, i))); err != nil {
				t.Fatal(err)
			}
		}
		waitForEvery(t, what, 5*time.Minute, 200*time.Millisecond,
			func() bool { return received() == got+float64(len(rcpts)) })
		return validated() - before
	}
	if worked := mailList("issue.1", keys(subs)); worked != 0 {
		t.Errorf("the list's mail to %d subscribers needed work for %v tickets, want 0", subscribers, worked)
	}
	if worked := mailList("issue.1.strangers", keys(others)); worked != float64(strangers) {
		t.Errorf("the list's mail to %d non-subscribers needed work for %v tickets, want all", strangers, worked)
	}

	// One subscriber leaves: the id the list holds is revoked, so work.
	var leaver string
	for addr := range subs {
		leaver = addr
		break
	}
	if err := s.submit(1, leaver, subs[leaver], []string{"list-unsubscribe@example.org"},
		plainMessage(leaver, "list-unsubscribe@example.org", "unsubscribe")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unsubscribe mail at the list's bridge", 30*time.Second,
		func() bool { return s.unfiled(0, "list@example.org") == subscribers+1 })
	if worked := mailList("issue.2", []string{leaver}); worked != 1 {
		t.Errorf("the list's mail to an unsubscribed user needed work for %v tickets, want 1", worked)
	}
}

// addUsers adds n users PREFIX000@example.net … to site 1 and returns
// their passwords by address.
func addUsers(s *sites, prefix string, n int) map[string]string {
	users := make(map[string]string, n)
	for i := range n {
		addr := fmt.Sprintf("%s%03d@example.net", prefix, i)
		users[addr] = s.addUser(1, addr)
	}
	return users
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
