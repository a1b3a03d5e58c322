package ticketserver

import (
	"errors"
	"net/http"
	"slices"

	"tollbridge/keyring"
	"tollbridge/store"
)

// receiptsLocal is the reserved local part whose WKD key signs receipts.
const receiptsLocal = "receipts"

// serveWKD answers Web Key Directory requests (advanced method) for the
// local domains: the binary public key of a user or of receipts@DOMAIN,
// 404 for anyone else, and the empty policy file.
func (s *Server) serveWKD(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, errorf(http.StatusMethodNotAllowed, "method %s not allowed, use GET", r.Method))
		return
	}
	req, err := keyring.ParseWKDPath(r.URL.Path)
	if err != nil || !slices.Contains(s.cfg.Domains, req.Domain) {
		s.fail(w, r, errorf(http.StatusNotFound, "no such key"))
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if req.Policy {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		return
	}
	key, err := s.wkdKey(r, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(key)
	}
}

func (s *Server) wkdKey(r *http.Request, req keyring.WKDRequest) ([]byte, error) {
	if req.Hash == keyring.WKDHash(receiptsLocal) {
		if k := s.cfg.ReceiptKeys[req.Domain]; k != nil {
			return keyring.PublicBytes(k)
		}
	}
	u, err := s.store.UserByWKDName(r.Context(), req.Domain+"/"+req.Hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "no such key")
	}
	if err != nil {
		return nil, err
	}
	return u.PublicKey, nil
}
