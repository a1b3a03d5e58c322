package imapout

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/store"
)

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox is read-only (EXAMINE)"}

// canonicalFlags spells system flags the standard way and drops \Recent,
// which only the server sets.
func canonicalFlags(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		s := string(f)
		if strings.HasPrefix(s, `\`) {
			found := false
			for _, sf := range systemFlags {
				if strings.EqualFold(s, string(sf)) {
					s, found = string(sf), true
				}
			}
			if !found {
				continue // \Recent, or an unknown system flag
			}
		}
		out = append(out, s)
	}
	return out
}

var storeOps = map[imap.StoreFlagsOp]store.FlagOp{
	imap.StoreFlagsSet: store.FlagsSet,
	imap.StoreFlagsAdd: store.FlagsAdd,
	imap.StoreFlagsDel: store.FlagsRemove,
}

// keywordsOf returns the keywords among flags (not the system flags).
func keywordsOf(flags []string) []string {
	var out []string
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			out = append(out, f)
		}
	}
	return out
}

// Store implements imapserver.Session. The untagged FETCH answers carry
// the UID, as clients want for UID STORE and may use for STORE.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	v := s.sel
	if v.readOnly {
		return errReadOnly
	}
	idx, err := v.resolve(numSet)
	if err != nil {
		return err
	}
	canonical := canonicalFlags(flags.Flags)
	// A keyword new to the mailbox is announced by FLAGS before any FETCH
	// carries it. go-imap gives STORE a writer for FETCH only and polls
	// after it (FLAGS first, then FETCH of changed flags, with the UID):
	// such a STORE leaves its FETCH answers to that poll.
	deferred := flags.Op != imap.StoreFlagsDel && newKeywords(v.keywords, keywordsOf(canonical))
	for _, chunk := range chunks(idx, 1000) {
		uids := make([]uint32, len(chunk))
		for i, p := range chunk {
			uids[i] = v.uids[p]
		}
		states, modseq, err := s.srv.st.StoreFlags(s.ctx, v.box.ID, uids, storeOps[flags.Op], canonical)
		if err != nil {
			return err
		}
		if modseq != 0 && (!deferred || flags.Silent) {
			v.own[modseq] = true
		}
		if deferred {
			continue
		}
		for _, st := range states {
			i := v.index(st.UID)
			// .SILENT still reports flags another session changed meanwhile.
			if i < 0 || flags.Silent && (st.Prev <= v.flagSeq || v.own[st.Prev]) {
				continue
			}
			resp := w.CreateMessage(uint32(i + 1))
			resp.WriteUID(imap.UID(st.UID))
			resp.WriteFlags(s.flagList(st.UID, st.Flags))
			if err := resp.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}
