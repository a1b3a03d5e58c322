package protocol

import (
	"bytes"
	"encoding/json"
)

// TicketRequest is the body of POST /v1/tickets (§3.2.1). SenderDomain and
// Created come with signed requests (version 1.1, §3.7); marshalled, they
// and SubscriptionID are left out when empty.
type TicketRequest struct {
	Sender         string   `json:"sender"`    // hash(envelope sender)
	Recipient      string   `json:"recipient"` // hash(envelope recipient)
	SubscriptionID string   `json:"subscription_id,omitempty"`
	SenderDomain   string   `json:"sender_domain,omitempty"`
	Created        int64    `json:"created,omitempty"` // Unix seconds
	Preference     []string `json:"preference"`        // worktype names, most preferred first
	Parts          Parts    `json:"parts"`
}

// Parts announces a message's shape in a ticket request: its numbers of
// blocks and attachments, and Bytes, the total size of the encrypted
// catalog and parts as they will be uploaded (the header not counted).
type Parts struct {
	Blocks      int64 `json:"blocks"`
	Attachments int64 `json:"attachments"`
	Bytes       int64 `json:"bytes"`
}

// ticketRequestWire is a ticket request as decoded: pointers tell a
// missing member from a zero one.
type ticketRequestWire struct {
	Sender         *string  `json:"sender"`
	Recipient      *string  `json:"recipient"`
	SubscriptionID *string  `json:"subscription_id"`
	SenderDomain   *string  `json:"sender_domain"`
	Created        *int64   `json:"created"`
	Preference     []string `json:"preference"`
	Parts          *struct {
		Blocks      *int64 `json:"blocks"`
		Attachments *int64 `json:"attachments"`
		Bytes       *int64 `json:"bytes"`
	} `json:"parts"`
}

// ParseTicketRequest decodes one ticket request. Every member but
// subscription_id (and the version 1.1 sender_domain and created) is
// required, counts are non-negative integers, sender and recipient are
// hashes; unknown members are ignored (§3.6). Errors wrap ErrMalformed
// (a 400) and name the first member at fault. Whether the server supports
// a worktype of the preference list is the server's to say.
func ParseTicketRequest(body []byte) (*TicketRequest, error) {
	var w ticketRequestWire
	if err := decodeOne(body, &w); err != nil {
		return nil, err
	}
	if err := w.validate(); err != nil {
		return nil, err
	}
	q := &TicketRequest{
		Sender: *w.Sender, Recipient: *w.Recipient, Preference: w.Preference,
		Parts: Parts{Blocks: *w.Parts.Blocks, Attachments: *w.Parts.Attachments, Bytes: *w.Parts.Bytes},
	}
	if w.SubscriptionID != nil {
		q.SubscriptionID = *w.SubscriptionID
	}
	if w.SenderDomain != nil {
		q.SenderDomain = *w.SenderDomain
	}
	if w.Created != nil {
		q.Created = *w.Created
	}
	return q, nil
}

// validate checks every required member, naming the first bad one.
func (w *ticketRequestWire) validate() error {
	switch {
	case w.Sender == nil:
		return malformedf("sender: required")
	case w.Recipient == nil:
		return malformedf("recipient: required")
	case w.Preference == nil:
		return malformedf("preference: required")
	case w.Parts == nil:
		return malformedf("parts: required")
	case w.Parts.Blocks == nil || *w.Parts.Blocks < 0:
		return malformedf("parts.blocks: required, a non-negative integer")
	case w.Parts.Attachments == nil || *w.Parts.Attachments < 0:
		return malformedf("parts.attachments: required, a non-negative integer")
	case w.Parts.Bytes == nil || *w.Parts.Bytes < 0:
		return malformedf("parts.bytes: required, a non-negative integer")
	case !IsHash(*w.Sender):
		return malformedf("sender: must be 64 lowercase hex characters (SHA-256 of the address)")
	case !IsHash(*w.Recipient):
		return malformedf("recipient: must be 64 lowercase hex characters (SHA-256 of the address)")
	}
	return nil
}

// decodeOne decodes exactly one JSON value into v; errors wrap
// ErrMalformed.
func decodeOne(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return malformedf("malformed JSON: %v", err)
	}
	if dec.More() {
		return malformedf("malformed JSON: data after the object")
	}
	return nil
}

// Ticket is a ticket as the server describes it (§3.2.1, §3.2.2). While
// it is not valid, Worktype names the work asked and Challenge is that
// worktype's challenge, which travels under the worktype's own name;
// Remaining, in answers to proof posts, counts the proofs still needed.
type Ticket struct {
	ID        string
	Valid     bool
	Expires   int64 // Unix seconds; expired when now >= Expires
	Worktype  string
	Remaining int
	Challenge json.RawMessage
}

// Members returns the ticket's JSON members: ticket_id, valid, expires
// and, while not valid, worktype, the challenge under the worktype's name
// and remaining when positive. An answer that adds members of its own
// (the 422 of a wrong proof adds "error") starts from these.
func (t Ticket) Members() map[string]any {
	m := map[string]any{"ticket_id": t.ID, "valid": t.Valid, "expires": t.Expires}
	if !t.Valid {
		m["worktype"] = t.Worktype
		m[t.Worktype] = t.Challenge
		if t.Remaining > 0 {
			m["remaining"] = t.Remaining
		}
	}
	return m
}

// MarshalJSON writes the ticket as the server answers it: Members, keys
// in sorted order.
func (t Ticket) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.Members())
}

// UnmarshalJSON reads a ticket answer: the challenge is the member named
// by worktype. It checks types only; ParseTicket checks the rules.
func (t *Ticket) UnmarshalJSON(b []byte) error {
	var w struct {
		ID        string `json:"ticket_id"`
		Valid     bool   `json:"valid"`
		Expires   int64  `json:"expires"`
		Worktype  string `json:"worktype"`
		Remaining int    `json:"remaining"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*t = Ticket{ID: w.ID, Valid: w.Valid, Expires: w.Expires, Worktype: w.Worktype, Remaining: w.Remaining}
	if w.Worktype == "" {
		return nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	t.Challenge = all[w.Worktype]
	return nil
}

// ParseTicket reads a ticket answer and checks what a sender relies on:
// a ticket_id, and for a ticket that is not valid a worktype and its
// challenge. Errors wrap ErrMalformed.
func ParseTicket(b []byte) (*Ticket, error) {
	var t Ticket
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, malformedf("ticket: %v", err)
	}
	if t.ID == "" {
		return nil, malformedf("ticket: no ticket_id")
	}
	if !t.Valid && (t.Worktype == "" || len(t.Challenge) == 0) {
		return nil, malformedf("ticket %s is not valid and names no work", t.ID)
	}
	return &t, nil
}

// Receipt is the 202 answer to POST /v1/tickets/{id}/complete (§3.3.2):
// the server's own id for the message, its clock (Unix seconds) and a
// detached binary OpenPGP signature over the header bytes exactly as
// uploaded (base64 in JSON).
type Receipt struct {
	MessageID string `json:"message_id"`
	Receipt   []byte `json:"receipt"`
	Received  int64  `json:"received"`
}
