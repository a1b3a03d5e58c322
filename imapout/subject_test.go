package imapout

import "testing"

// TestBaseSubject: the base subject extraction of RFC 5256 §2.1, step by
// step, and the reply/forward mark.
func TestBaseSubject(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
		reply    bool
	}{
		{"Meeting", "Meeting", false},
		{"Re: Meeting", "Meeting", true},
		{"RE: re:Re :  Meeting", "Meeting", true},
		{"Fwd: Meeting", "Meeting", true},
		{"FW: Meeting", "Meeting", true},
		{"Meeting (fwd)", "Meeting", true},
		{"Meeting (FWD) (fwd)  ", "Meeting", true},
		{"[list] Meeting", "Meeting", false},
		{"[list] Re: [other] Meeting", "Meeting", true},
		{"Re[2]: Meeting", "Meeting", true},
		{"[a][b] Re: Meeting", "Meeting", true},
		{"[fwd: Re: Meeting]", "Meeting", true},
		{"[Fwd: [fwd: Meeting (fwd)]]", "Meeting", true},
		{"[list]", "[list]", false},
		{"[list] [only]", "[only]", false},
		{"Re: [list]", "[list]", true},
		{"Reply", "Reply", false},
		{"Re Meeting", "Re Meeting", false},
		{"\tMeeting \t  today ", "Meeting today", false},
		{"=?utf-8?q?Re:_Caf=C3=A9?=", "Café", true},
		{"", "", false},
		{"Re:", "", true},
		{"[fwd:]", "", false},
	} {
		if got := extractBaseSubject(c.in); got.text != c.want || got.reply != c.reply {
			t.Errorf("%q: %q reply %v, want %q reply %v", c.in, got.text, got.reply, c.want, c.reply)
		}
	}
}
