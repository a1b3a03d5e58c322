package ticketclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"tollbridge/pow"
	"tollbridge/protocol"
)

// ErrAlreadyCompleted means the ticket of an earlier attempt was completed:
// the message was delivered before (the sender crashed before noting it).
var ErrAlreadyCompleted = errors.New("delivery already completed")

// Message is one sealed message for one recipient.
type Message struct {
	Sender    string // hash of the envelope sender
	Recipient string // hash of the envelope recipient
	// SenderDomain is the envelope sender's domain, whose server key signs
	// the ticket request; "" (e.g. bounces) sends it unsigned.
	SenderDomain   string
	SubscriptionID string
	Header         Blob
	Catalog        Blob
	Parts          []Part
}

// Part is one encrypted block or attachment.
type Part struct {
	ID   string
	Kind string // protocol.KindBlock or protocol.KindAttachment
	Blob Blob
}

func (m *Message) announce() protocol.Parts {
	p := protocol.Parts{Bytes: m.Catalog.Size()}
	for _, part := range m.Parts {
		if part.Kind == protocol.KindBlock {
			p.Blocks++
		} else {
			p.Attachments++
		}
		p.Bytes += part.Blob.Size()
	}
	return p
}

// Progress is how far the work on a ticket has come, as Hooks.Stage
// reports it.
type Progress = pow.Progress

// Hooks let the caller follow and persist a delivery.
type Hooks struct {
	// Ticket is called with every new ticket before anything is uploaded
	// on it; the caller persists it to resume after a crash. An error
	// aborts the delivery.
	Ticket func(*protocol.Ticket) error
	// Stage reports "ticket", "working", "uploading" or "completing", with
	// work progress while working.
	Stage func(stage string, p Progress)
}

func (h Hooks) stage(s string, p Progress) {
	if h.Stage != nil {
		h.Stage(s, p)
	}
}

// Deliver runs the whole exchange for one recipient: ticket, work, upload,
// complete. resume is the ticket of an interrupted earlier attempt, or nil.
// Its errors are *Error (see Temporary), ErrAlreadyCompleted, or others
// (a local failure, or a server answering nonsense) which are temporary.
func (c *Client) Deliver(ctx context.Context, e *Endpoint, m *Message, resume *protocol.Ticket, h Hooks) (*protocol.Receipt, error) {
	t := resume
	for round := 0; round < 3; round++ {
		if t != nil && round == 0 {
			r, next, err := c.resume(ctx, e, m, t, h)
			switch next {
			case resumeDone:
				return r, err
			case resumeNewTicket:
				t = nil
			}
		}
		if t == nil {
			var err error
			if t, err = c.newTicket(ctx, e, m, h); err != nil {
				return nil, err
			}
		}
		r, err := c.finish(ctx, e, m, t, h)
		if s := StatusOf(err); s == http.StatusGone || s == http.StatusNotFound {
			t = nil // the ticket expired or was forgotten under us: start over
			continue
		}
		return r, err
	}
	return nil, &Error{Op: "deliver", Status: http.StatusGone, Msg: "tickets keep expiring before the work is done"}
}

// resumeStep is what to do after trying to complete an earlier ticket.
type resumeStep int

const (
	resumeDone      resumeStep = iota // finished: return its receipt or error
	resumeWork                        // the ticket is usable: work and upload on it
	resumeNewTicket                   // the ticket is gone: ask for a new one
)

// resume tries to complete an earlier ticket and says what to do next.
func (c *Client) resume(ctx context.Context, e *Endpoint, m *Message, t *protocol.Ticket, h Hooks) (*protocol.Receipt, resumeStep, error) {
	h.stage("completing", Progress{})
	r, err := e.Complete(ctx, t.ID)
	switch StatusOf(err) {
	case 0:
		return r, resumeDone, err
	case http.StatusConflict:
		return nil, resumeDone, fmt.Errorf("ticket %s: %w", t.ID, ErrAlreadyCompleted)
	case http.StatusUnprocessableEntity:
		t.Valid = true // uploads are missing, the ticket is usable
		return nil, resumeWork, nil
	case http.StatusForbidden:
		if len(t.Challenge) == 0 {
			// Not valid, and its challenge was not kept (a record from
			// before tickets were kept as the server answers them).
			return nil, resumeNewTicket, nil
		}
		t.Valid = false
		return nil, resumeWork, nil
	case http.StatusNotFound, http.StatusGone:
		return nil, resumeNewTicket, nil
	}
	return nil, resumeDone, err
}

func (c *Client) newTicket(ctx context.Context, e *Endpoint, m *Message, h Hooks) (*protocol.Ticket, error) {
	h.stage("ticket", Progress{})
	t, err := e.RequestTicket(ctx, protocol.TicketRequest{
		Sender: m.Sender, Recipient: m.Recipient, SubscriptionID: m.SubscriptionID,
		SenderDomain: m.SenderDomain, Preference: c.works.Names(), Parts: m.announce(),
	})
	if err != nil {
		return nil, err
	}
	if h.Ticket != nil {
		if err := h.Ticket(t); err != nil {
			return nil, fmt.Errorf("ticket %s: %w", t.ID, err)
		}
	}
	return t, nil
}

// finish works (if needed), uploads and completes on ticket t.
func (c *Client) finish(ctx context.Context, e *Endpoint, m *Message, t *protocol.Ticket, h Hooks) (*protocol.Receipt, error) {
	if !t.Valid {
		var err error
		if t, err = c.work(ctx, e, t, h); err != nil {
			return nil, err
		}
	}
	if err := c.uploadAll(ctx, e, m, t, h, ""); err != nil {
		return nil, err
	}
	h.stage("completing", Progress{})
	r, err := e.Complete(ctx, t.ID)
	if StatusOf(err) == http.StatusUnprocessableEntity {
		// The server is missing something: upload again (only the part it
		// names, when it names one) and try once more; a second 422 is
		// permanent.
		var ae *Error
		errors.As(err, &ae)
		if err := c.uploadAll(ctx, e, m, t, h, ae.Part); err != nil {
			return nil, err
		}
		r, err = e.Complete(ctx, t.ID)
	}
	if StatusOf(err) == http.StatusConflict {
		return nil, fmt.Errorf("ticket %s: %w", t.ID, ErrAlreadyCompleted)
	}
	return r, err
}

// Work the sending side will not or cannot do: permanent failures for the
// message, made here rather than answered by the server.
var (
	// ErrUnsupportedWork: the server demands a worktype this side lacks.
	ErrUnsupportedWork = errors.New("worktype not supported here")
	// ErrWorkTooHard: the challenge's expected cost is over Options.MaxWork.
	ErrWorkTooHard = errors.New("work too hard")
	// ErrWorkNotAccepted: every proof asked for was posted and accepted,
	// yet the server says the ticket is still not valid.
	ErrWorkNotAccepted = errors.New("ticket not valid after the work")
)

// errValid stops the solver once the server says the ticket is valid.
var errValid = errors.New("ticket valid")

// work solves the ticket's challenge, posting proofs as they are found.
func (c *Client) work(ctx context.Context, e *Endpoint, t *protocol.Ticket, h Hooks) (*protocol.Ticket, error) {
	w, ok := c.works.Get(t.Worktype)
	if !ok {
		return nil, fmt.Errorf("work: server demands worktype %q: %w", t.Worktype, ErrUnsupportedWork)
	}
	cur := t
	var last Progress
	opts := pow.SolveOptions{
		Workers:         c.opts.Workers,
		Needed:          t.Remaining,
		MaxExpectedWork: c.opts.MaxWork,
		Progress:        func(p Progress) { last = p; h.stage("working", p) },
	}
	err := w.Solve(ctx, t.Challenge, opts, func(sub json.RawMessage) error {
		next, err := e.SubmitWork(ctx, cur, sub)
		if err != nil {
			return err
		}
		cur = next
		if cur.Valid {
			return errValid
		}
		return nil
	})
	if errors.Is(err, pow.ErrTooHard) {
		return nil, fmt.Errorf("work: %w: %w", ErrWorkTooHard, err)
	}
	if err != nil && !errors.Is(err, errValid) {
		return nil, err
	}
	if !cur.Valid {
		return nil, fmt.Errorf("work: ticket %s: %w", t.ID, ErrWorkNotAccepted)
	}
	// The batch that made the ticket valid stopped the solver before it
	// could count it; report the work as done.
	last.Found = last.Count
	h.stage("working", last)
	return cur, nil
}

// uploadAll PUTs header, catalog and parts; with only set, just that one.
func (c *Client) uploadAll(ctx context.Context, e *Endpoint, m *Message, t *protocol.Ticket, h Hooks, only string) error {
	h.stage("uploading", Progress{})
	items := []struct {
		id, name string
		b        Blob
	}{{protocol.UploadHeader, protocol.UploadHeader, m.Header}, {protocol.UploadCatalog, protocol.UploadCatalog, m.Catalog}}
	for _, p := range m.Parts {
		items = append(items, struct {
			id, name string
			b        Blob
		}{p.ID, protocol.PartUpload(p.Kind, p.ID), p.Blob})
	}
	known := false
	for _, it := range items {
		known = known || it.id == only
	}
	for _, it := range items {
		if known && it.id != only {
			continue
		}
		if _, err := e.Upload(ctx, t.ID, it.name, it.b); err != nil {
			return err
		}
	}
	return nil
}
