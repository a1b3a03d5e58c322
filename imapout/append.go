package imapout

import (
	"context"
	"fmt"
	"io"

	"github.com/emersion/go-imap/v2"

	"tollbridge/store"
)

// Append implements imapserver.Session: the message is sealed to the
// user's own key (Sent and Drafts stay encrypted at rest), described for
// the metadata cache from the plaintext at hand, and filed with its
// flags in one transaction. The client later sees it byte for byte, with
// no trace fields in front.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	box, err := s.destination(mailbox)
	if err != nil {
		return nil, err
	}
	if s.srv.cfg.Seal == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "APPEND is not available"}
	}
	sp := store.NewSpool(s.srv.cfg.SpoolDir, memSpool)
	defer sp.Close()
	if _, err := io.Copy(sp, r); err != nil {
		return nil, fmt.Errorf("append: reading literal: %w", err)
	}
	res, err := scanMessage(sp.Section(0, sp.Size()))
	if err != nil {
		return nil, err
	}
	md := newMeta(res)
	md.Filter = renderedFilter(md.Root, sp)
	nm, err := s.srv.cfg.Seal(s.ctx, s.user, sp, sp.Size())
	if err != nil {
		return nil, fmt.Errorf("append: seal: %w", err)
	}
	nm.UserID, nm.Source, nm.Auth, nm.Mailbox = s.user.ID, store.SourceAppend, "", ""
	nm.Flags = canonicalFlags(options.Flags)
	nm.Received = options.Time
	if nm.Received.IsZero() {
		nm.Received = s.srv.cfg.Now()
	}
	if err := s.acct.checkSealed(s.ctx, nm, sp.Size()); err != nil {
		return nil, err
	}
	d, validity, err := s.srv.st.AppendMessage(s.ctx, nm, box.ID, md.Size, func(id int64) ([]byte, error) {
		return s.acct.metas.seal(md, id)
	})
	if err != nil {
		return nil, err
	}
	return &imap.AppendData{UID: imap.UID(d.UID), UIDValidity: validity}, nil
}

// checkSealed opens what Seal produced and makes sure it rebuilds to a
// message of the same size, so the metadata cache built from the
// plaintext describes what will be shown.
func (a *account) checkSealed(ctx context.Context, nm *store.NewMessage, size int64) error {
	m := &store.SealedMessage{Header: nm.Header, Source: store.SourceAppend, Blobs: map[string]string{}}
	for name, ref := range nm.Blobs {
		m.Blobs[name] = ref.Hash
	}
	o, err := a.open(ctx, m)
	if err != nil {
		return fmt.Errorf("append: sealed message: %w", err)
	}
	if got := o.cat.MessageSize(); got != size {
		return fmt.Errorf("append: sealed message rebuilds to %d bytes, not %d", got, size)
	}
	return nil
}
