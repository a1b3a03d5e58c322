package imapout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestID: ID (RFC 2971) answers in every state with the server's name,
// and its version only after login; the client's list or NIL is read,
// a malformed one refused.
func TestID(t *testing.T) {
	t.Parallel()
	e, u, r := rfcEnv(t)
	before := e.raw()
	if got := before.ok(`ID ("name" "mutt" "version" "2.2.13" "x-extra" NIL)`); fmt.Sprint(got) != `[* ID ("name" "tollbridge")]` {
		t.Errorf("ID before login: %q", got)
	}
	got := r.ok("ID NIL")
	if len(got) != 1 || !strings.HasPrefix(got[0], `* ID ("name" "tollbridge" "version" "`) {
		t.Errorf("ID after login: %q", got)
	}
	for _, bad := range []string{`ID`, `ID ("name")`, `ID FOO`} {
		if _, status := r.do("%s", bad); !strings.HasPrefix(status, "BAD") {
			t.Errorf("%s: %s", bad, status)
		}
	}
	c := e.login(u)
	id, err := c.ID(&imap.IDData{Name: "go-imap test", Version: "1"}).Wait()
	if err != nil || id.Name != "tollbridge" || id.Version == "" {
		t.Errorf("client ID: %+v %v", id, err)
	}
}
