package outbox

import "testing"

// TestNotifies: RFC 3461 §4.1: without NOTIFY only failures are reported;
// NEVER reports nothing; otherwise what is listed.
func TestNotifies(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		notify, kind string
		want         bool
	}{
		{"", "FAILURE", true}, {"", "SUCCESS", false}, {"", "DELAY", false},
		{"NEVER", "FAILURE", false}, {"NEVER", "SUCCESS", false},
		{"SUCCESS", "SUCCESS", true}, {"SUCCESS", "FAILURE", false},
		{"SUCCESS,FAILURE", "FAILURE", true}, {"DELAY,SUCCESS", "SUCCESS", true},
	} {
		if got := notifies(c.notify, c.kind); got != c.want {
			t.Errorf("notifies(%q, %q) = %v, want %v", c.notify, c.kind, got, c.want)
		}
	}
}
