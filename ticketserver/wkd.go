package ticketserver

import (
	"context"
	"errors"
	"fmt"
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
	if errors.Is(err, store.ErrNotFound) && s.cfg.Recipients != nil {
		u, err = s.wkdAlias(r, req)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "no such key")
	}
	if err != nil {
		return nil, err
	}
	return u.PublicKey, nil
}

// wkdAlias finds the one user behind an alias, postmaster address or
// subaddress (named by ?l=) that a WKD request names; ErrNotFound if none.
func (s *Server) wkdAlias(r *http.Request, req keyring.WKDRequest) (*store.User, error) {
	ctx := r.Context()
	addr, sub, err := s.cfg.Recipients.AddressByWKD(ctx, req.Domain, req.Hash, r.URL.Query().Get("l"))
	if err != nil {
		return nil, err
	}
	u, err := s.aliasUser(ctx, addr)
	if err != nil || !sub {
		return u, err
	}
	// The ticket request that follows names the subaddress by hash only:
	// remember it. Each lookup is a write, so it counts against the
	// client's ticket request rate.
	if wait, ok := s.byIP.allow(limitKey(clientIP(r))); !ok {
		return nil, tooMany(wait, "too many requests from your address")
	}
	if err := s.store.NoteSubaddress(ctx, keyring.HashNormalized(addr), addr); err != nil {
		return nil, err
	}
	return u, nil
}

// aliasUser is the one user addr resolves to, without the catch-all
// (docs/protocol.md §3.1.2: an address with several users has no key to
// serve, so it is unknown on the ticket path); ErrNotFound otherwise.
func (s *Server) aliasUser(ctx context.Context, addr string) (*store.User, error) {
	if addr == "" {
		return nil, store.ErrNotFound
	}
	users, err := s.cfg.Recipients.ResolveKnown(ctx, addr)
	if errors.Is(err, keyring.ErrNoSuchUser) || errors.Is(err, keyring.ErrAliasLoop) || len(users) > 1 {
		if len(users) > 1 {
			s.log.Info("alias with several users asked for on the ticket path", "alias", addr)
		}
		return nil, fmt.Errorf("%s: %w", addr, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return s.store.UserByAddress(ctx, users[0])
}
