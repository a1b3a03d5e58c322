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
// the UID, as clients want for UID STORE and may use for STORE, and the
// MODSEQ once CONDSTORE is enabled. With UNCHANGEDSINCE (RFC 7162
// §3.1.3) messages changed since are left alone and named in [MODIFIED].
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
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
	var modified []uint32
	for _, chunk := range chunks(idx, 1000) {
		states, err := s.storeChunk(v.uidsAt(chunk), flags.Op, canonical, options, !deferred || flags.Silent)
		if err != nil {
			return err
		}
		for _, st := range states {
			if st.Modified {
				modified = append(modified, st.UID)
				continue
			}
			if deferred {
				continue
			}
			if err := s.storeAnswer(w, st, flags.Silent); err != nil {
				return err
			}
		}
	}
	if len(modified) > 0 {
		_, byUID := numSet.(imap.UIDSet)
		w.SetModified(v.modifiedSet(modified, byUID))
	}
	return nil
}

// storeChunk changes the flags of up to 1000 messages in one transaction,
// under UNCHANGEDSINCE when given, and with own notes the change as the
// session's own so that no poll reports it again.
func (s *session) storeChunk(uids []uint32, op imap.StoreFlagsOp, flags []string, options *imap.StoreOptions, own bool) ([]store.FlagState, error) {
	v := s.sel
	var states []store.FlagState
	var modseq int64
	var err error
	if options != nil && options.Conditional {
		states, modseq, err = s.srv.st.StoreFlagsUnchangedSince(s.ctx, v.box.ID, uids, storeOps[op], flags, int64(options.UnchangedSince))
	} else {
		states, modseq, err = s.srv.st.StoreFlags(s.ctx, v.box.ID, uids, storeOps[op], flags)
	}
	if err != nil {
		return nil, err
	}
	if modseq != 0 && own {
		v.own[modseq] = true
	}
	return states, nil
}

// storeAnswer writes STORE's untagged FETCH for one message. .SILENT
// leaves out the flags the client set itself, but still reports flags
// another session changed meanwhile and, with CONDSTORE, the new MODSEQ
// of a message it changed (RFC 7162 §3.1.3).
func (s *session) storeAnswer(w *imapserver.FetchWriter, st store.FlagState, silent bool) error {
	v := s.sel
	i := v.index(st.UID)
	if i < 0 {
		return nil
	}
	condstore := w.CondStore()
	quiet := silent && st.Prev <= v.flagSeq || silent && v.own[st.Prev]
	if quiet && !(condstore && st.Changed) {
		return nil
	}
	resp := w.CreateMessage(uint32(i + 1))
	resp.WriteUID(imap.UID(st.UID))
	if !quiet {
		resp.WriteFlags(s.flagList(st.UID, st.Flags))
	}
	if condstore {
		resp.WriteModSeq(uint64(st.ModSeq))
	}
	return resp.Close()
}
