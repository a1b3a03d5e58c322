package imapserver

// tollbridge: this file is tollbridge's (THREAD); see PATCHES.md.

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// Thread is one node of a thread tree: a message (Num, a sequence number
// or UID) or, with Num 0, a dummy that only groups its children (RFC 5256
// §4: a root-level placeholder of REFERENCES).
type Thread struct {
	Num      uint32
	Children []Thread
}

// SessionThread is an IMAP session which supports THREAD and UID THREAD
// (RFC 5256).
type SessionThread interface {
	Session

	// ThreadAlgorithms lists the algorithms Thread supports; each is
	// advertised as a THREAD= capability.
	ThreadAlgorithms() []imap.ThreadAlgorithm
	// Thread returns the threads of the messages matching criteria, in
	// the order the algorithm gives.
	Thread(kind NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]Thread, error)
}

func (c *Conn) handleThread(dec *imapwire.Decoder, numKind NumKind) error {
	session, ok := c.session.(SessionThread)
	if !ok {
		return newClientBugError("THREAD is not supported")
	}
	var name string
	if !dec.ExpectSP() || !dec.ExpectAtom(&name) {
		return dec.Err()
	}
	alg := imap.ThreadAlgorithm(strings.ToUpper(name))
	criteria, err := readCharsetAndSearch(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	known := false
	for _, a := range session.ThreadAlgorithms() {
		known = known || a == alg
	}
	if !known {
		return newClientBugError("unknown threading algorithm " + name)
	}
	threads, err := session.Thread(numKind, alg, criteria)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("THREAD")
	if len(threads) > 0 {
		enc.SP()
	}
	for _, t := range threads {
		writeThreadList(enc.Encoder, t)
	}
	return enc.CRLF()
}

// writeThreadList writes one thread-list of RFC 5256 §5: a chain of
// single children as "n n n", two or more children as nested lists
// ("(3 6 (4 23)(44 7 96))"), a dummy as its children's lists only.
func writeThreadList(enc *imapwire.Encoder, t Thread) {
	enc.Special('(')
	writeThreadMembers(enc, t)
	enc.Special(')')
}

func writeThreadMembers(enc *imapwire.Encoder, t Thread) {
	for t.Num != 0 {
		enc.Number(t.Num)
		if len(t.Children) != 1 || t.Children[0].Num == 0 {
			break
		}
		enc.SP()
		t = t.Children[0]
	}
	switch {
	case len(t.Children) == 0:
		return
	case t.Num == 0 && len(t.Children) == 1:
		// A lone child of a dummy stands for the dummy.
		writeThreadMembers(enc, t.Children[0])
		return
	case t.Num != 0:
		enc.SP()
	}
	for _, child := range t.Children {
		writeThreadList(enc, child)
	}
}
