package imapserver

// tollbridge: this file adds CONDSTORE and QRESYNC (RFC 7162) to the
// server: the command modifiers and parameters, the MODSEQ, VANISHED and
// HIGHESTMODSEQ responses, and the state that says when they are due.

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SessionQResync is a session that supports QRESYNC's SELECT parameter
// (RFC 7162 §3.2.5).
type SessionQResync interface {
	Session

	// SelectResync is called after a SELECT or EXAMINE with the QRESYNC
	// parameter answered its usual data and before its tagged OK, when
	// the UIDVALIDITY the client gave still holds: it tells the client
	// what was expunged (VANISHED (EARLIER)) and which flags changed
	// (FETCH with UID, FLAGS and MODSEQ) since the client's mod-sequence.
	SelectResync(w *FetchWriter, params *imap.SelectQResync) error
}

// enableCondStore records that the client used a CONDSTORE enabling
// command (RFC 7162 §3.1): from now on every untagged FETCH about changed
// flags carries MODSEQ.
func (c *Conn) enableCondStore() {
	c.mutex.Lock()
	c.enabled[imap.CapCondStore] = struct{}{}
	c.mutex.Unlock()
}

func (c *Conn) qresyncEnabled() bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.enabled.Has(imap.CapQResync)
}

func (c *Conn) supports(cap imap.Cap) bool {
	return c.server.options.caps().Has(cap)
}

// readSelectParams reads SELECT's parameters after the mailbox name:
// (CONDSTORE) and (QRESYNC (uidvalidity modseq [known-uids
// [(seq-set uid-set)]])) (RFC 7162 §3.1.8, §3.2.5).
func (c *Conn) readSelectParams(dec *imapwire.Decoder, options *imap.SelectOptions) error {
	if !dec.SP() {
		return nil
	}
	return dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CONDSTORE":
			if !c.supports(imap.CapCondStore) {
				return newClientBugError("CONDSTORE is not supported")
			}
			options.CondStore = true
			return nil
		case "QRESYNC":
			if !c.qresyncEnabled() {
				// RFC 7162 §3.2.5: only after ENABLE QRESYNC.
				return newClientBugError("QRESYNC must be enabled first")
			}
			if !dec.ExpectSP() {
				return dec.Err()
			}
			options.QResync = &imap.SelectQResync{}
			return readQResyncParam(dec, options.QResync)
		default:
			return newClientBugError("Unknown SELECT parameter")
		}
	})
}

func readQResyncParam(dec *imapwire.Decoder, q *imap.SelectQResync) error {
	if !dec.ExpectSpecial('(') || !dec.ExpectNumber(&q.UIDValidity) || !dec.ExpectSP() || !dec.ExpectModSeq(&q.ModSeq) {
		return dec.Err()
	}
	if q.UIDValidity == 0 || q.ModSeq == 0 {
		return newClientBugError("QRESYNC needs a non-zero UIDVALIDITY and mod-sequence")
	}
	for dec.SP() {
		if dec.Special('(') {
			q.SeqMatch = &imap.SelectSeqMatch{}
			var seqs imap.NumSet
			if !dec.ExpectNumSet(imapwire.NumKindSeq, &seqs) || !dec.ExpectSP() || !dec.ExpectUIDSet(&q.SeqMatch.UIDs) || !dec.ExpectSpecial(')') {
				return dec.Err()
			}
			set, ok := seqs.(imap.SeqSet)
			if !ok || imap.IsSearchRes(q.SeqMatch.UIDs) {
				return newClientBugError("Invalid QRESYNC sequence match data")
			}
			q.SeqMatch.SeqNums = set
			break
		}
		if q.KnownUIDs != nil {
			return newClientBugError("Invalid QRESYNC parameter")
		}
		if !dec.ExpectUIDSet(&q.KnownUIDs) {
			return dec.Err()
		}
		if imap.IsSearchRes(q.KnownUIDs) {
			return newClientBugError("$ is not a UID set here")
		}
	}
	if !dec.ExpectSpecial(')') {
		return dec.Err()
	}
	return nil
}

// writeHighestModSeq writes the untagged OK [HIGHESTMODSEQ n] of SELECT,
// EXAMINE and of the first CONDSTORE enabling command in the selected
// state (RFC 7162 §3.1.2.1).
func (c *Conn) writeHighestModSeq(modSeq uint64) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("HIGHESTMODSEQ").SP().ModSeq(modSeq).Special(']')
	enc.SP().Text("Highest")
	return enc.CRLF()
}

// writeVanished writes VANISHED, or VANISHED (EARLIER) for UIDs expunged
// before the command (RFC 7162 §3.2.10).
func (c *Conn) writeVanished(uids imap.UIDSet, earlier bool) error {
	if len(uids) == 0 {
		return nil
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP()
	if earlier {
		enc.Special('(').Atom("EARLIER").Special(')').SP()
	}
	enc.NumSet(uids)
	return enc.CRLF()
}

// readFetchModifiers reads FETCH's modifiers after its items:
// (CHANGEDSINCE n [VANISHED]) (RFC 7162 §3.1.4.1, §3.2.6).
func (c *Conn) readFetchModifiers(dec *imapwire.Decoder, options *imap.FetchOptions, numKind NumKind) error {
	if !dec.SP() {
		return nil
	}
	err := dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CHANGEDSINCE":
			if !dec.ExpectSP() || !dec.ExpectModSeq(&options.ChangedSince) {
				return dec.Err()
			}
			if options.ChangedSince == 0 {
				return newClientBugError("CHANGEDSINCE needs a non-zero mod-sequence")
			}
		case "VANISHED":
			options.Vanished = true
		default:
			return newClientBugError("Unknown FETCH modifier")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !c.supports(imap.CapCondStore) {
		return newClientBugError("FETCH modifiers are not supported")
	}
	if options.Vanished && (numKind != NumKindUID || options.ChangedSince == 0 || !c.qresyncEnabled()) {
		// RFC 7162 §3.2.6: UID FETCH only, with CHANGEDSINCE, once
		// QRESYNC is enabled.
		return newClientBugError("VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC")
	}
	// CHANGEDSINCE implies MODSEQ (RFC 7162 §3.1.4.1).
	options.ModSeq = true
	return nil
}

// readStoreModifiers reads STORE's (UNCHANGEDSINCE n) (RFC 7162 §3.1.3);
// the opening parenthesis has been read.
func (c *Conn) readStoreModifiers(dec *imapwire.Decoder, options *imap.StoreOptions) (bool, error) {
	if !dec.Special('(') {
		return false, nil
	}
	set := false
	for {
		var name string
		if !dec.ExpectAtom(&name) {
			return false, dec.Err()
		}
		if strings.ToUpper(name) != "UNCHANGEDSINCE" {
			return false, newClientBugError("Unknown STORE modifier")
		}
		if !dec.ExpectSP() || !dec.ExpectModSeq(&options.UnchangedSince) {
			return false, dec.Err()
		}
		set = true
		if !dec.SP() {
			break
		}
	}
	if !dec.ExpectSpecial(')') || !dec.ExpectSP() {
		return false, dec.Err()
	}
	if !c.supports(imap.CapCondStore) {
		return false, newClientBugError("STORE modifiers are not supported")
	}
	return set, nil
}

// readSearchModSeq reads the MODSEQ search key's arguments: an optional
// metadata entry and type, and the mod-sequence (RFC 7162 §3.1.5).
func readSearchModSeq(dec *imapwire.Decoder) (*imap.SearchCriteriaModSeq, error) {
	var out imap.SearchCriteriaModSeq
	if !dec.ExpectSP() {
		return nil, dec.Err()
	}
	if dec.Quoted(&out.MetadataName) {
		var typ string
		if !dec.ExpectSP() || !dec.ExpectAtom(&typ) || !dec.ExpectSP() {
			return nil, dec.Err()
		}
		switch t := imap.SearchCriteriaMetadataType(strings.ToLower(typ)); t {
		case imap.SearchCriteriaMetadataAll, imap.SearchCriteriaMetadataPrivate, imap.SearchCriteriaMetadataShared:
			out.MetadataType = t
		default:
			return nil, newClientBugError("Unknown MODSEQ entry type")
		}
	}
	if !dec.ExpectModSeq(&out.ModSeq) {
		return nil, dec.Err()
	}
	return &out, nil
}

// hasModSeqKey reports whether a search uses MODSEQ anywhere, which makes
// its answer carry the highest mod-sequence found (RFC 7162 §3.1.5).
func hasModSeqKey(criteria *imap.SearchCriteria) bool {
	if criteria.ModSeq != nil {
		return true
	}
	for i := range criteria.Not {
		if hasModSeqKey(&criteria.Not[i]) {
			return true
		}
	}
	for i := range criteria.Or {
		if hasModSeqKey(&criteria.Or[i][0]) || hasModSeqKey(&criteria.Or[i][1]) {
			return true
		}
	}
	return false
}

// WriteModSeq writes the message's mod-sequence (RFC 7162 §3.1.4).
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.writeItemSep()
	w.enc.Atom("MODSEQ").SP().Special('(').ModSeq(modSeq).Special(')')
}

// WriteVanished writes VANISHED (EARLIER), which UID FETCH (CHANGEDSINCE
// n VANISHED) and SELECT (QRESYNC …) send before their FETCH responses.
func (cmd *FetchWriter) WriteVanished(uids imap.UIDSet) error {
	return cmd.conn.writeVanished(uids, true)
}

// SetModified records the messages a STORE (UNCHANGEDSINCE n) left alone
// because they changed since: the command then ends with OK [MODIFIED
// set] (RFC 7162 §3.1.3). The set holds sequence numbers for STORE and
// UIDs for UID STORE.
func (cmd *FetchWriter) SetModified(set imap.NumSet) {
	cmd.modified = set
}

// CondStore reports whether the client enabled CONDSTORE (explicitly or
// by a CONDSTORE enabling command): untagged FETCH responses about flag
// changes then carry UID and MODSEQ (RFC 7162 §3.1).
func (cmd *FetchWriter) CondStore() bool { return cmd.conn.EnabledCaps().Has(imap.CapCondStore) }

// WriteVanished writes VANISHED for messages an EXPUNGE removed; a session
// uses it instead of WriteExpunge once QRESYNC is enabled (RFC 7162
// §3.2.10).
func (w *ExpungeWriter) WriteVanished(uids imap.UIDSet) error {
	if w.conn == nil {
		return nil
	}
	return w.conn.writeVanished(uids, false)
}

// WriteVanished writes VANISHED for the messages a MOVE removed.
func (w *MoveWriter) WriteVanished(uids imap.UIDSet) error {
	return w.conn.writeVanished(uids, false)
}

// WriteVanished writes VANISHED for messages expunged by others.
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: VANISHED updates are not allowed in this context")
	}
	return w.conn.writeVanished(uids, false)
}

// WriteHighestModSeq writes an untagged OK [HIGHESTMODSEQ n].
func (w *UpdateWriter) WriteHighestModSeq(modSeq uint64) error {
	return w.conn.writeHighestModSeq(modSeq)
}

// WriteMessageFlagsModSeq writes a FETCH response with UID, FLAGS and
// MODSEQ: a flag change by another session once CONDSTORE is enabled.
func (w *UpdateWriter) WriteMessageFlagsModSeq(seqNum uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	resp := (&FetchWriter{conn: w.conn}).CreateMessage(seqNum)
	resp.WriteUID(uid)
	resp.WriteFlags(flags)
	resp.WriteModSeq(modSeq)
	return resp.Close()
}

// QResync reports whether the client enabled QRESYNC: expunges are then
// told by VANISHED, never EXPUNGE (RFC 7162 §3.2.10).
func (w *UpdateWriter) QResync() bool { return w.conn.qresyncEnabled() }

// CondStore reports whether CONDSTORE is enabled on the connection.
func (w *UpdateWriter) CondStore() bool { return w.conn.EnabledCaps().Has(imap.CapCondStore) }

// modifiedResponse is the OK [MODIFIED set] that ends a STORE
// (UNCHANGEDSINCE n) some of whose messages failed the condition.
func modifiedResponse(set imap.NumSet) error {
	return &imap.Error{
		Type: imap.StatusResponseTypeOK,
		Code: imap.ResponseCode("MODIFIED " + set.String()),
		Text: "Conditional STORE failed",
	}
}
