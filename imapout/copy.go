package imapout

import (
	"errors"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/store"
)

var errTryCreate = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}

// destination finds the target mailbox of COPY, MOVE and APPEND.
func (s *session) destination(name string) (*store.Mailbox, error) {
	box, err := s.srv.st.MailboxByName(s.ctx, s.user.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTryCreate
	}
	return box, err
}

// uidsAt returns the UIDs at view positions.
func (v *selected) uidsAt(idx []int) []uint32 {
	uids := make([]uint32, len(idx))
	for i, p := range idx {
		uids[i] = v.uids[p]
	}
	return uids
}

// Copy implements imapserver.Session (with UIDPLUS's COPYUID).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	v := s.sel
	idx, err := v.resolve(numSet)
	if err != nil {
		return nil, err
	}
	box, err := s.destination(dest)
	if err != nil {
		return nil, err
	}
	res, err := s.srv.st.CopyMessages(s.ctx, v.box.ID, v.uidsAt(idx), box.ID, false)
	if err != nil || len(res.Source) == 0 {
		return nil, err
	}
	return &imap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: uidSet(res.Source), DestUIDs: uidSet(res.Dest)}, nil
}

// Move implements imapserver.SessionMove (RFC 6851): COPYUID, then the
// EXPUNGE of each moved message.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	v := s.sel
	if v.readOnly {
		return errReadOnly
	}
	idx, err := v.resolve(numSet)
	if err != nil {
		return err
	}
	box, err := s.destination(dest)
	if err != nil {
		return err
	}
	res, err := s.srv.st.CopyMessages(s.ctx, v.box.ID, v.uidsAt(idx), box.ID, true)
	if err != nil || len(res.Source) == 0 {
		return err
	}
	err = w.WriteCopyData(&imap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: uidSet(res.Source), DestUIDs: uidSet(res.Dest)})
	if err != nil {
		return err
	}
	return s.tellExpunged(w, res.Source, s.qresync())
}

// Expunge implements imapserver.Session: EXPUNGE, UID EXPUNGE (UIDPLUS)
// and, with a silent writer, CLOSE.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	v := s.sel
	if v.readOnly {
		if *w == (imapserver.ExpungeWriter{}) {
			return nil // CLOSE of an EXAMINEd mailbox expunges nothing
		}
		return errReadOnly
	}
	var only []uint32
	if uids != nil {
		idx, err := v.resolve(*uids)
		if err != nil {
			return err
		}
		only = v.uidsAt(idx)
	}
	gone, _, err := s.srv.st.ExpungeMessages(s.ctx, v.box.ID, v.lastUID(), only)
	if err != nil {
		return err
	}
	return s.tellExpunged(w, gone, s.qresync())
}
