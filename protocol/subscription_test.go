package protocol

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// subscriptionVector is docs/protocol.md §3.9 (f).
type subscriptionVector struct {
	Addresses []struct {
		To, Action, List string
	}
}

// TestListAction runs the addresses of vector (f).
func TestListAction(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../conformance/testdata/vectors/subscriptions.json")
	if err != nil {
		t.Fatal(err)
	}
	var v subscriptionVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, a := range v.Addresses {
		at := strings.LastIndexByte(a.To, '@')
		list, subscribe, ok := ListAction(a.To[:at])
		action := "none"
		if ok && subscribe {
			action = "subscribe"
		} else if ok {
			action = "unsubscribe"
		}
		if action != a.Action || ok && list+a.To[at:] != a.List {
			t.Errorf("%s: %s of %q, want %s of %q", a.To, action, list, a.Action, a.List)
		}
	}
	for _, id := range []string{"", strings.Repeat("a", 129), "s_1 2", "s_ä"} {
		if ValidSubscriptionID(id) {
			t.Errorf("ValidSubscriptionID(%q) = true", id)
		}
	}
	if !ValidSubscriptionID("s_3f1c2a9b8e7d6c5b4a39281706f5e4d3") {
		t.Error("a minted id is not valid")
	}
}
