package ticketserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"tollbridge/protocol"
	"tollbridge/store"
)

const (
	// maxHeaderBytes fits the header of the largest message a ticket may
	// announce (maxParts parts of ~130 bytes each).
	maxHeaderBytes = 256 << 10
	uploadDeadline = 30 * time.Minute
)

// uploadName maps upload path segments (after the ticket id) to the name
// the upload is stored under: protocol.UploadHeader, protocol.UploadCatalog
// or a part's protocol.PartUpload ("blocks/b1", …).
func uploadName(segs []string) (string, error) {
	if len(segs) == 1 {
		return segs[0], nil
	}
	if !protocol.ValidPartID(segs[1]) {
		return "", errorf(http.StatusBadRequest, "part id %q: must be 1-64 of A-Z a-z 0-9 _ -", segs[1])
	}
	return segs[0] + "/" + segs[1], nil
}

// handleUpload is PUT /v1/tickets/{id}/(header|catalog|blocks/{p}|attachments/{p}).
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, segs []string) {
	ctx := r.Context()
	t, err := s.store.CheckTicket(ctx, segs[0], true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name, err := uploadName(segs[1:])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ups, err := s.store.Uploads(ctx, t.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := uploadRoom(ups, name, t.Bytes, t.Blocks+t.Attachments)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.ContentLength > limit {
		s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "%s: %d bytes is more than the %d left for this ticket", name, r.ContentLength, limit))
		return
	}
	// Room is reserved before the body is read: what Content-Length
	// announces, else all the ticket has left.
	want := limit
	if r.ContentLength >= 0 {
		want = r.ContentLength
	}
	release, err := s.pending.reserve(ctx, store.ClientKey(t.ClientIP), want, ups[name].Size)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer release()
	ref, err := s.receive(w, r, name, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.PutUploadWithin(ctx, t.ID, name, ref, s.pending.quota); err != nil {
		s.store.DiscardBlob(context.WithoutCancel(ctx), ref.Hash)
		switch {
		case errors.Is(err, store.ErrUploadTooLarge):
			err = errorf(http.StatusRequestEntityTooLarge, "%v", err)
		case errors.Is(err, store.ErrTooManyParts):
			err = errorf(http.StatusBadRequest, "%v", err)
		}
		s.fail(w, r, quotaError(err))
		return
	}
	reply(w, http.StatusOK, map[string]any{"size": ref.Size, "sha256": ref.Hash})
}

// receive streams an upload's body of at most limit bytes into a new blob,
// cutting it off below the minimum rate. On any error nothing is kept.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, name string, limit int64) (store.BlobRef, error) {
	deadline(w, uploadDeadline)
	bw, err := s.store.Blobs().Create()
	if err != nil {
		return store.BlobRef{}, err
	}
	defer bw.Abort()
	body := guardRate(http.MaxBytesReader(w, r.Body, limit), s.cfg.MinUploadRate, s.cfg.UploadRateWindow, cutRead(w))
	_, err = io.Copy(bw, body)
	body.stop()
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errTooSlow):
		// The connection cannot carry another request: its body is unread.
		w.Header().Set("Connection", "close")
		return store.BlobRef{}, errorf(http.StatusRequestTimeout, "%s: slower than %d bytes/s; upload aborted", name, s.cfg.MinUploadRate)
	case errors.As(err, &mbe):
		return store.BlobRef{}, errorf(http.StatusRequestEntityTooLarge, "%s: more than the %d bytes left for this ticket", name, limit)
	case err != nil:
		return store.BlobRef{}, errorf(http.StatusBadRequest, "%s: reading body: %v", name, err)
	}
	// Not fsynced yet: complete syncs what the message keeps, and a part
	// lost with the machine before then is uploaded again after a 422.
	return bw.CommitUnsynced()
}

// uploadRoom returns how many bytes the upload called name may have, given
// the ticket's current uploads: the header is small; the catalog and parts
// together stay within the bytes the ticket announced, and parts within
// the announced count.
func uploadRoom(ups map[string]store.BlobRef, name string, announced int64, parts int) (int64, error) {
	if name == protocol.UploadHeader {
		return maxHeaderBytes, nil
	}
	used, count := int64(0), 0
	for n, ref := range ups {
		if n == protocol.UploadHeader || n == name {
			continue
		}
		used += ref.Size
		if n != protocol.UploadCatalog {
			count++
		}
	}
	if name != protocol.UploadCatalog && count+1 > parts {
		return 0, errorf(http.StatusBadRequest, "%s: the ticket announced %d parts and %d others are uploaded", name, parts, count)
	}
	return max(announced-used, 0), nil
}
