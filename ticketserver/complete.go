package ticketserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/store"
)

// incomplete is the 422 of a complete whose header, catalog or part is
// missing or does not match.
func incomplete(part, format string, args ...any) *apiError {
	e := errorf(http.StatusUnprocessableEntity, format, args...)
	e.extra = map[string]any{"part": part}
	return e
}

// maxFailedCompletes is how many completions of one ticket may fail (422)
// before the ticket is closed: a sender fixes a part or two and completes
// again, but one ticket cannot make the server check bad uploads forever.
// (The conformance suite fixes one fault after another on one ticket, nine
// in all, as §3.6's "the ticket stays open" allows; hence not fewer.)
const maxFailedCompletes = 10

// handleComplete is POST /v1/tickets/{id}/complete.
func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request, segs []string) {
	ctx := r.Context()
	deadline(w, jsonDeadline)
	t, err := s.store.CheckTicket(ctx, segs[0], true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ans, err := s.complete(r, t)
	if err != nil {
		s.fail(w, r, s.failedComplete(ctx, t, err))
		return
	}
	reply(w, http.StatusAccepted, ans)
}

// complete checks the ticket's uploads and delivers its message, returning
// the 202 answer.
func (s *Server) complete(r *http.Request, t *store.Ticket) (*protocol.Receipt, error) {
	ctx := r.Context()
	ups, err := s.store.Uploads(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	raw, h, err := s.readHeader(ctx, t, ups)
	if err != nil {
		return nil, err
	}
	names, err := checkParts(h, ups)
	if err != nil {
		return nil, err
	}
	if err := s.syncParts(names, ups); err != nil {
		return nil, err
	}
	receipt, err := s.receipt(ctx, t, raw)
	if err != nil {
		return nil, err
	}
	now := s.store.Now()
	msgID := newID("m_")
	m := &store.NewMessage{
		UserID: t.UserID, Header: raw, Source: store.SourceTicket, Received: now,
		Trace: []byte(s.received(clientIP(r), msgID, now)),
		// A ticket with no worktype was valid at once: a trusted sender's.
		NoWork: t.Worktype == "",
	}
	err = s.store.CompleteTicket(ctx, t.ID, m, names, ups, receipt, msgID)
	var changed *store.UploadChangedError
	if errors.As(err, &changed) {
		err = incomplete(changed.Part, "%s was uploaded again during completion; complete again", changed.Part)
	}
	if err != nil {
		return nil, err
	}
	if s.metrics.MessagesReceived != nil {
		s.metrics.MessagesReceived()
	}
	s.log.Info("message received", "ticket", t.ID, "message", msgID, "parts", len(h.Parts), "ip", clientIP(r))
	return &protocol.Receipt{MessageID: msgID, Receipt: receipt, Received: now.Unix()}, nil
}

// failedComplete counts a refused completion (422) against the ticket and
// says so in the answer when it closed the ticket; other errors pass.
func (s *Server) failedComplete(ctx context.Context, t *store.Ticket, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusUnprocessableEntity {
		return err
	}
	closed, ferr := s.store.FailComplete(context.WithoutCancel(ctx), t.ID, maxFailedCompletes)
	if ferr != nil {
		s.log.Warn("counting a failed complete", "ticket", t.ID, "err", ferr)
		return err
	}
	if closed {
		s.log.Info("ticket closed after failed completes", "ticket", t.ID, "ip", t.ClientIP, "failed", maxFailedCompletes)
		ae.msg += fmt.Sprintf("; the ticket is closed after %d failed completes, ask for a new one", maxFailedCompletes)
	}
	return ae
}

// readHeader loads the uploaded header, parses it strictly
// (protocol.ParseHeader, the rules the recipient's bridge opens it by) and
// checks it against the ticket and the recipient's key.
func (s *Server) readHeader(ctx context.Context, t *store.Ticket, ups map[string]store.BlobRef) ([]byte, *protocol.Header, error) {
	ref, ok := ups[protocol.UploadHeader]
	if !ok {
		return nil, nil, incomplete(protocol.UploadHeader, "header not uploaded")
	}
	f, err := s.store.Blobs().Open(ref.Hash)
	if err != nil {
		return nil, nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxHeaderBytes+1))
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	// ParseHeader checks the nesting first, in one scan: deeper JSON costs
	// decoders more than a valid header ever needs.
	h, err := protocol.ParseHeader(raw)
	if err != nil {
		return nil, nil, incomplete(protocol.UploadHeader, "%v", err)
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case h.From != t.SenderHash:
		return nil, nil, incomplete(protocol.UploadHeader, "header: from does not match the ticket's sender")
	case h.To != t.RecipientHash:
		return nil, nil, incomplete(protocol.UploadHeader, "header: to does not match the ticket's recipient")
	case h.KeyFingerprint != u.Fingerprint:
		return nil, nil, incomplete(protocol.UploadHeader, "header: key_fingerprint %q is not the recipient's key %s", h.KeyFingerprint, u.Fingerprint)
	}
	return raw, h, nil
}

// checkParts matches the header's catalog and parts to the uploads and
// returns the message's blob names (store.CatalogBlob and part ids) mapped
// to upload names.
func checkParts(h *protocol.Header, ups map[string]store.BlobRef) (map[string]string, error) {
	names := map[string]string{store.CatalogBlob: protocol.UploadCatalog}
	if err := matches(protocol.UploadCatalog, ups[protocol.UploadCatalog], h.Catalog.Size, h.Catalog.SHA256); err != nil {
		return nil, err
	}
	for _, p := range h.Parts {
		// ParseHeader took the ids as valid and unique; one named like the
		// catalog would collide with its blob name.
		if p.ID == store.CatalogBlob || names[p.ID] != "" {
			return nil, incomplete(protocol.UploadHeader, "header: part id %q invalid or repeated", p.ID)
		}
		upload := p.Upload()
		if err := matches(p.ID, ups[upload], p.Size, p.SHA256); err != nil {
			return nil, err
		}
		names[p.ID] = upload
	}
	return names, nil
}

// syncParts makes the uploads the message keeps durable, reporting one
// that did not survive a machine crash as missing.
func (s *Server) syncParts(names map[string]string, ups map[string]store.BlobRef) error {
	for part, upload := range names {
		if err := s.store.Blobs().Sync(ups[upload]); errors.Is(err, store.ErrNotFound) {
			return incomplete(part, "%s: upload lost, upload it again", part)
		} else if err != nil {
			return err
		}
	}
	return nil
}

func matches(part string, ref store.BlobRef, size int64, sum string) error {
	switch {
	case ref.Hash == "":
		return incomplete(part, "%s not uploaded", part)
	case ref.Size != size:
		return incomplete(part, "%s: uploaded %d bytes, header says %d", part, ref.Size, size)
	case ref.Hash != sum:
		return incomplete(part, "%s: uploaded bytes have sha256 %s, header says %q", part, ref.Hash, sum)
	}
	return nil
}

// receipt signs the header bytes with the recipient domain's receipt key.
func (s *Server) receipt(ctx context.Context, t *store.Ticket, raw []byte) ([]byte, error) {
	u, err := s.store.UserByID(ctx, t.UserID)
	if err != nil {
		return nil, err
	}
	_, domain := keyring.SplitAddress(u.Address)
	key := s.cfg.ReceiptKeys[domain]
	if key == nil {
		return nil, fmt.Errorf("no receipt key for domain %s", domain)
	}
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, key, bytes.NewReader(raw), nil); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	return sig.Bytes(), nil
}

// received is the Received: field put in front of the message for the
// recipient's mail client (RFC 5321 §4.4).
func (s *Server) received(ip, id string, now time.Time) string {
	if strings.Contains(ip, ":") {
		ip = "IPv6:" + ip
	}
	return fmt.Sprintf("Received: from [%s] by %s with tollbridge id %s;\r\n\t%s\r\n",
		ip, s.cfg.Hostname, id, now.UTC().Format(time.RFC1123Z))
}
