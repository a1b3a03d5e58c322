package ticketserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"time"

	"tollbridge/store"
)

const (
	// maxHeaderBytes fits the header of the largest message a ticket may
	// announce (maxParts parts of ~130 bytes each).
	maxHeaderBytes = 256 << 10
	uploadDeadline = 30 * time.Minute
)

// partID is what a part id may look like (it becomes part of a path).
var partID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// uploadName maps upload path segments (after the ticket id) to the name
// the upload is stored under: "header", "catalog", "blocks/b1", ….
func uploadName(segs []string) (string, error) {
	if len(segs) == 1 {
		return segs[0], nil
	}
	if !partID.MatchString(segs[1]) {
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
	limit, err := s.uploadRoom(r, t.ID, name, t.Bytes, t.Blocks+t.Attachments)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.ContentLength > limit {
		s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "%s: %d bytes is more than the %d left for this ticket", name, r.ContentLength, limit))
		return
	}
	deadline(w, uploadDeadline)
	bw, err := s.store.Blobs().Create()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer bw.Abort()
	_, err = io.Copy(bw, http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "%s: more than the %d bytes left for this ticket", name, limit))
		return
	case err != nil:
		s.fail(w, r, errorf(http.StatusBadRequest, "%s: reading body: %v", name, err))
		return
	}
	// Not fsynced yet: complete syncs what the message keeps, and a part
	// lost with the machine before then is uploaded again after a 422.
	ref, err := bw.CommitUnsynced()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.PutUpload(ctx, t.ID, name, ref); err != nil {
		s.store.DiscardBlob(context.WithoutCancel(ctx), ref.Hash)
		switch {
		case errors.Is(err, store.ErrUploadTooLarge):
			err = errorf(http.StatusRequestEntityTooLarge, "%v", err)
		case errors.Is(err, store.ErrTooManyParts):
			err = errorf(http.StatusBadRequest, "%v", err)
		}
		s.fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"size": ref.Size, "sha256": ref.Hash})
}

// uploadRoom returns how many bytes the upload called name may have: the
// header is small; the catalog and parts together stay within the bytes
// the ticket announced, and parts within the announced count.
func (s *Server) uploadRoom(r *http.Request, id, name string, announced int64, parts int) (int64, error) {
	if name == "header" {
		return maxHeaderBytes, nil
	}
	ups, err := s.store.Uploads(r.Context(), id)
	if err != nil {
		return 0, err
	}
	used, count := int64(0), 0
	for n, ref := range ups {
		if n == "header" || n == name {
			continue
		}
		used += ref.Size
		if n != "catalog" {
			count++
		}
	}
	if name != "catalog" && count+1 > parts {
		return 0, errorf(http.StatusBadRequest, "%s: the ticket announced %d parts and %d others are uploaded", name, parts, count)
	}
	return max(announced-used, 0), nil
}
