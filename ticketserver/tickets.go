package ticketserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tollbridge/pow"
	"tollbridge/protocol"
	"tollbridge/store"
)

// Bounds on what a client may send.
const (
	maxJSONBody  = 64 << 10  // ticket requests
	maxWorkBody  = 256 << 10 // proof posts
	maxParts     = 1000      // blocks + attachments of one message
	jsonDeadline = 30 * time.Second
)

func newID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// readJSON decodes a size-limited JSON body into v, answering 400 or 413,
// and returns the body's bytes.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) ([]byte, error) {
	body, err := readBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	return body, decodeJSON(body, v)
}

// readBody reads a size-limited request body, answering 400 or 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	deadline(w, jsonDeadline)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	return body, nil
}

// decodeJSON decodes exactly one JSON value into v, answering 400.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "malformed JSON: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "malformed JSON: data after the object")
	}
	return nil
}

// handleRequest is POST /v1/tickets.
func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request, _ []string) {
	if wait, ok := s.byIP.allow(limitKey(clientIP(r))); !ok {
		s.fail(w, r, tooMany(wait, "too many ticket requests from your address"))
		return
	}
	body, err := readBody(w, r, maxJSONBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, err := protocol.ParseTicketRequest(body)
	if err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	if wait, ok := s.bySend.allow(q.Sender); !ok {
		s.fail(w, r, tooMany(wait, "too many ticket requests from this sender"))
		return
	}
	t, err := s.issue(r, body, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.metrics.TicketsIssued != nil {
		s.metrics.TicketsIssued()
	}
	s.log.Debug("ticket issued", "ticket", t.ID, "valid", t.Valid, "ip", t.ClientIP)
	reply(w, http.StatusCreated, ticketAnswer(t, 0))
}

// issue makes the ticket for a validated request whose body was body.
func (s *Server) issue(r *http.Request, body []byte, q *protocol.TicketRequest) (*store.Ticket, error) {
	ctx := r.Context()
	work, ok := s.works.Offer(q.Preference) // the server's order: memory-hard first (§3.8)
	if !ok {
		return nil, errorf(http.StatusBadRequest, "preference: no supported worktype in %q (this server offers %q)", q.Preference, s.works.Names())
	}
	u, err := s.store.UserByHash(ctx, q.Recipient)
	if errors.Is(err, store.ErrNotFound) && s.cfg.Recipients != nil {
		u, err = s.hashAlias(ctx, q.Recipient)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "unknown recipient")
	} else if err != nil {
		return nil, err
	}
	// Each count is bounded before they are added, so the sum cannot overflow.
	if b, a := q.Parts.Blocks, q.Parts.Attachments; b > maxParts || a > maxParts || b+a > maxParts {
		return nil, errorf(http.StatusRequestEntityTooLarge, "message has %d blocks and %d attachments, at most %d parts allowed", b, a, maxParts)
	}
	if limit := s.uploadLimit(); q.Parts.Bytes > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "message of %d bytes is larger than the %d this server accepts", q.Parts.Bytes, limit)
	}
	tr, err := s.trusts(ctx, r, body, q, u)
	if err != nil {
		return nil, err
	}
	if err := s.holdOffer(ctx, r, body, q, u, tr); err != nil {
		return nil, err
	}
	trusted := tr.valid
	now := s.store.Now()
	t := &store.Ticket{
		ID: newID("t_"), SenderHash: q.Sender, RecipientHash: q.Recipient, UserID: u.ID,
		Valid: trusted, Expires: now.Add(s.cfg.Expiry).Truncate(time.Second),
		Blocks: int(q.Parts.Blocks), Attachments: int(q.Parts.Attachments), Bytes: q.Parts.Bytes,
		ClientIP: clientIP(r),
	}
	if !trusted {
		challenge, needed, err := work.NewChallenge(s.cfg.Difficulty)
		if err != nil {
			return nil, fmt.Errorf("challenge: %w", err)
		}
		t.Worktype, t.Challenge, t.Needed = work.Name(), challenge, needed
	}
	if err := s.store.CreateTicket(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// uploadLimit is the most a message may weigh encrypted: the SMTP limit
// plus room for OpenPGP framing and a large catalog.
func (s *Server) uploadLimit() int64 {
	return s.cfg.MaxMessageBytes + s.cfg.MaxMessageBytes/16 + 1<<20
}

func tooMany(wait time.Duration, msg string) *apiError {
	secs := int((wait + time.Second - 1) / time.Second)
	e := errorf(http.StatusTooManyRequests, "%s; retry in %d s", msg, secs)
	e.header = http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}
	return e
}

// ticketAnswer is a ticket as answered: with its challenge and, after a
// proof post (remaining > 0), how many proofs remain, while not valid.
func ticketAnswer(t *store.Ticket, remaining int) *protocol.Ticket {
	a := &protocol.Ticket{ID: t.ID, Valid: t.Valid, Expires: t.Expires.Unix()}
	if !t.Valid {
		a.Worktype, a.Challenge, a.Remaining = t.Worktype, json.RawMessage(t.Challenge), remaining
	}
	return a
}

// handleWork is POST /v1/tickets/{id}: proofs for the ticket's challenge.
func (s *Server) handleWork(w http.ResponseWriter, r *http.Request, segs []string) {
	ctx := r.Context()
	t, err := s.store.CheckTicket(ctx, segs[0], false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var body map[string]json.RawMessage
	if _, err := readJSON(w, r, maxWorkBody, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if t.Valid {
		reply(w, http.StatusOK, ticketAnswer(t, 0))
		return
	}
	sub, ok := body[t.Worktype]
	if !ok {
		s.fail(w, r, errorf(http.StatusBadRequest, "%s: required (the ticket's worktype)", t.Worktype))
		return
	}
	work, ok := s.works.Get(t.Worktype)
	if !ok {
		s.fail(w, r, fmt.Errorf("ticket %s: worktype %q no longer offered", t.ID, t.Worktype))
		return
	}
	proofs, err := work.Check(t.Challenge, sub)
	switch {
	case errors.Is(err, pow.ErrWrongProof):
		e := errorf(http.StatusUnprocessableEntity, "%v", err)
		e.extra = ticketAnswer(t, t.Needed-t.Done).Members()
		s.fail(w, r, e)
		return
	case err != nil:
		s.fail(w, r, errorf(http.StatusBadRequest, "%s: %v", t.Worktype, err))
		return
	}
	t, err = s.store.AddProofs(ctx, t.ID, proofs, s.cfg.Expiry)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if t.Valid && s.metrics.TicketsValidated != nil {
		s.metrics.TicketsValidated()
	}
	if t.Valid && s.metrics.TicketsWorked != nil {
		s.metrics.TicketsWorked(t.Worktype)
	}
	reply(w, http.StatusOK, ticketAnswer(t, t.Needed-t.Done))
}

// hashAlias finds the one user behind the alias or postmaster address
// whose hash(a) is hash; ErrNotFound if none. The ticket keeps the
// alias's hash: the sender's header names it (§3.3.4).
func (s *Server) hashAlias(ctx context.Context, hash string) (*store.User, error) {
	addr, err := s.cfg.Recipients.AddressByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	return s.aliasUser(ctx, addr)
}
