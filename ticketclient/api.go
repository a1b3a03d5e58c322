package ticketclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"tollbridge/protocol"
)

// Error is a failed request. Temporary errors (network, 429, 5xx) are
// worth retrying later; the rest are permanent for this message.
type Error struct {
	Op         string        // what was being done, e.g. "ticket", "upload b1"
	Status     int           // HTTP status; 0 for network errors
	Msg        string        // the server's {"error": …}
	Part       string        // for 422 at completion: the part at fault
	RetryAfter time.Duration // from a 429's Retry-After
	Err        error         // underlying network error, if any
}

func (e *Error) Error() string {
	switch {
	case e.Status == 0:
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	case e.Part != "":
		return fmt.Sprintf("%s: HTTP %d: %s (part %s)", e.Op, e.Status, e.Msg, e.Part)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Status, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// StatusOf returns the HTTP status of a ticketclient error, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsTemporary reports whether err is worth retrying later.
func IsTemporary(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Temporary()
}

// Blob is uploadable content that can be read again for a retry.
type Blob interface {
	Size() int64
	Open() (io.ReadCloser, error)
}

// BytesBlob is a Blob held in memory.
type BytesBlob []byte

// Size is the length of b.
func (b BytesBlob) Size() int64 { return int64(len(b)) }

// Open reads b.
func (b BytesBlob) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

// call is one request: its body is re-opened for every attempt.
type call struct {
	op     string
	method string
	path   string
	body   Blob
	json   bool
	header http.Header // extra request header fields
}

// do sends the request, retrying network errors, 429 and 5xx with
// backoff, and returns the answer's status and body (at most 1 MiB) for
// any other status. 2xx answers are returned without error.
func (e *Endpoint) do(ctx context.Context, c call) (int, []byte, error) {
	wait := e.c.opts.Backoff
	var last *Error
	for attempt := 1; ; attempt++ {
		status, body, err := e.once(ctx, c)
		if err == nil {
			return status, body, nil
		}
		if !errors.As(err, &last) || !last.Temporary() || attempt >= e.c.opts.Attempts {
			return status, body, err
		}
		d := max(wait, min(last.RetryAfter, 5*time.Minute))
		e.c.log.Debug("ticket api retry", "op", c.op, "url", e.URL, "err", err, "in", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0, nil, &Error{Op: c.op, Err: ctx.Err()}
		}
		wait *= 2
	}
}

func (e *Endpoint) once(ctx context.Context, c call) (int, []byte, error) {
	var body io.ReadCloser = http.NoBody
	var size int64
	if c.body != nil {
		var err error
		if body, err = c.body.Open(); err != nil {
			return 0, nil, fmt.Errorf("%s: %w", c.op, err)
		}
		size = c.body.Size()
	}
	req, err := http.NewRequestWithContext(ctx, c.method, e.URL+c.path, body)
	if err != nil {
		body.Close()
		return 0, nil, &Error{Op: c.op, Err: err}
	}
	req.ContentLength = size
	if c.json {
		req.Header.Set("Content-Type", "application/json")
	} else if c.body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", e.c.opts.UserAgent)
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return 0, nil, &Error{Op: c.op, Err: err}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, &Error{Op: c.op, Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, answer, nil
	}
	return resp.StatusCode, answer, answerError(c.op, resp, answer)
}

func answerError(op string, resp *http.Response, answer []byte) *Error {
	var body protocol.ErrorBody
	json.Unmarshal(answer, &body)
	if body.Error == "" {
		body.Error = http.StatusText(resp.StatusCode)
	}
	e := &Error{Op: op, Status: resp.StatusCode, Msg: body.Error, Part: body.Part}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	return e
}

// parseTicket reads a ticket answer; op names the request in errors.
func parseTicket(op string, b []byte) (*protocol.Ticket, error) {
	t, err := protocol.ParseTicket(b)
	if err != nil {
		return nil, fmt.Errorf("%s: answer: %w", op, err)
	}
	return t, nil
}

// RequestTicket asks for a ticket (POST /v1/tickets). When the client has
// a Signer and q names a SenderDomain, the request is signed (§3.7):
// created is set to now and the signature over the exact body bytes goes
// into the Tollbridge-Signature header. A request that cannot be signed
// goes unsigned; it still gets a ticket, with work.
func (e *Endpoint) RequestTicket(ctx context.Context, q protocol.TicketRequest) (*protocol.Ticket, error) {
	b, header, err := e.sign(q)
	if err != nil {
		return nil, err
	}
	_, answer, err := e.do(ctx, call{op: "ticket", method: http.MethodPost, path: protocol.TicketsPath, body: BytesBlob(b), json: true, header: header})
	if err != nil {
		return nil, err
	}
	return parseTicket("ticket", answer)
}

// SubmitWork posts one submission for the ticket's worktype
// (POST /v1/tickets/{id}) and returns the ticket as it now stands.
func (e *Endpoint) SubmitWork(ctx context.Context, t *protocol.Ticket, submission json.RawMessage) (*protocol.Ticket, error) {
	b, err := json.Marshal(map[string]json.RawMessage{t.Worktype: submission})
	if err != nil {
		return nil, err
	}
	_, answer, err := e.do(ctx, call{op: "work", method: http.MethodPost, path: protocol.TicketsPath + "/" + t.ID, body: BytesBlob(b), json: true})
	if err != nil {
		return nil, err
	}
	return parseTicket("work", answer)
}

// UploadResult is a PUT's answer.
type UploadResult struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Upload PUTs one item: name is protocol.UploadHeader,
// protocol.UploadCatalog or a part's protocol.PartUpload.
func (e *Endpoint) Upload(ctx context.Context, ticketID, name string, b Blob) (*UploadResult, error) {
	op := "upload " + name
	// The header is JSON; the catalog and parts are OpenPGP packets.
	_, answer, err := e.do(ctx, call{op: op, method: http.MethodPut, path: protocol.TicketsPath + "/" + ticketID + "/" + name, body: b, json: name == protocol.UploadHeader})
	if err != nil {
		return nil, err
	}
	var r UploadResult
	if err := json.Unmarshal(answer, &r); err != nil {
		return nil, fmt.Errorf("%s: answer: %w", op, err)
	}
	return &r, nil
}

// Complete finishes a delivery (POST /v1/tickets/{id}/complete).
func (e *Endpoint) Complete(ctx context.Context, ticketID string) (*protocol.Receipt, error) {
	_, answer, err := e.do(ctx, call{op: "complete", method: http.MethodPost, path: protocol.TicketsPath + "/" + ticketID + "/" + protocol.CompleteName})
	if err != nil {
		return nil, err
	}
	var r protocol.Receipt
	if err := json.Unmarshal(answer, &r); err != nil {
		return nil, fmt.Errorf("complete: answer: %w", err)
	}
	return &r, nil
}
