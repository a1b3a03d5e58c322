package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestTicketRequestMarshal: a sender's request is written in the order
// and shape of §3.2.1 (the bytes a signed request's signature covers),
// optional members only when set.
func TestTicketRequestMarshal(t *testing.T) {
	t.Parallel()
	q := TicketRequest{Sender: "s", Recipient: "r", Preference: []string{"pow"}, Parts: Parts{Blocks: 2, Attachments: 1, Bytes: 123}}
	b, _ := json.Marshal(q)
	if want := `{"sender":"s","recipient":"r","preference":["pow"],"parts":{"blocks":2,"attachments":1,"bytes":123}}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	q.SubscriptionID, q.SenderDomain, q.Created = "list", "example.org", 1767225600
	b, _ = json.Marshal(q)
	if want := `{"sender":"s","recipient":"r","subscription_id":"list","sender_domain":"example.org","created":1767225600,"preference":["pow"],"parts":{"blocks":2,"attachments":1,"bytes":123}}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestParseTicketRequest(t *testing.T) {
	t.Parallel()
	h := HashAddress("a@example.org")
	good := `{"sender":"` + h + `","recipient":"` + h + `","preference":["x","pow"],"parts":{"blocks":2,"attachments":0,"bytes":9},"future":{"a":1}}`
	q, err := ParseTicketRequest([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if q.Sender != h || q.Recipient != h || len(q.Preference) != 2 || q.Parts != (Parts{2, 0, 9}) || q.SenderDomain != "" || q.Created != 0 {
		t.Fatalf("%+v", q)
	}
	signed := strings.Replace(good, `"future"`, `"sender_domain":"example.org","created":1767225600,"subscription_id":"l","future"`, 1)
	if q, err := ParseTicketRequest([]byte(signed)); err != nil || q.SenderDomain != "example.org" || q.Created != 1767225600 || q.SubscriptionID != "l" {
		t.Fatalf("signed: %+v, %v", q, err)
	}
	for _, c := range []struct{ body, says string }{
		{strings.Replace(good, `"sender":`, `"x":`, 1), "sender: required"},
		{strings.Replace(good, `"recipient":`, `"x":`, 1), "recipient: required"},
		{strings.Replace(good, `"preference":["x","pow"]`, `"preference":null`, 1), "preference: required"},
		{strings.Replace(good, `"parts":`, `"x":`, 1), "parts: required"},
		{strings.Replace(good, `"blocks":2,`, ``, 1), "parts.blocks"},
		{strings.Replace(good, `"blocks":2`, `"blocks":-2`, 1), "parts.blocks"},
		{strings.Replace(good, `"attachments":0,`, ``, 1), "parts.attachments"},
		{strings.Replace(good, `"bytes":9`, `"bytes":-1`, 1), "parts.bytes"},
		{strings.Replace(good, `"blocks":2`, `"blocks":1.5`, 1), "malformed JSON"},
		{strings.Replace(good, `"bytes":9`, `"bytes":"9"`, 1), "malformed JSON"},
		{strings.Replace(good, `"created":`, `"x":`, 1) + ` {}`, "data after"},
		{strings.Replace(good, `"future"`, `"created":"now","future"`, 1), "malformed JSON"},
		{strings.Replace(good, `"sender":"`+h, `"sender":"`+strings.ToUpper(h), 1), "sender: must be 64"},
		{strings.Replace(good, `"recipient":"`+h, `"recipient":"a@example.org`, 1), "recipient: must be 64"},
		{`[]`, "malformed JSON"},
		{``, "malformed JSON"},
	} {
		_, err := ParseTicketRequest([]byte(c.body))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", c.body, err, c.says)
		}
	}
	// An empty preference is the server's to refuse: it offers none of it.
	if _, err := ParseTicketRequest([]byte(strings.Replace(good, `["x","pow"]`, `[]`, 1))); err != nil {
		t.Errorf("empty preference: %v", err)
	}
}

// serverAnswer is a ticket answer built the way ticketserver built it
// before this package: a map, so members come in sorted order.
func serverAnswer(id string, valid bool, expires int64, worktype string, challenge json.RawMessage, remaining int) []byte {
	a := map[string]any{"ticket_id": id, "valid": valid, "expires": expires}
	if !valid {
		a["worktype"] = worktype
		a[worktype] = challenge
		if remaining > 0 {
			a["remaining"] = remaining
		}
	}
	b, _ := json.Marshal(a)
	return b
}

// TestTicketWire: a Ticket marshals to the very bytes the server answered
// before, and a sender reads it back, challenge from under the
// worktype's name.
func TestTicketWire(t *testing.T) {
	t.Parallel()
	ch := json.RawMessage(`{"bits":22,"data":"AAAA","count":4}`)
	for _, tk := range []Ticket{
		{ID: "t_a", Valid: true, Expires: 1767225600},
		{ID: "t_b", Expires: 1767225600, Worktype: "pow", Challenge: ch},
		{ID: "t_c", Expires: 1767225600, Worktype: "pow", Challenge: ch, Remaining: 3},
	} {
		b, err := json.Marshal(&tk)
		if err != nil {
			t.Fatal(err)
		}
		if want := serverAnswer(tk.ID, tk.Valid, tk.Expires, tk.Worktype, tk.Challenge, tk.Remaining); string(b) != string(want) {
			t.Errorf("got  %s\nwant %s", b, want)
		}
		if v, _ := json.Marshal(tk); string(v) != string(b) {
			t.Errorf("a Ticket value marshals as %s", v)
		}
		got, err := ParseTicket(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != tk.ID || got.Valid != tk.Valid || got.Expires != tk.Expires || got.Worktype != tk.Worktype ||
			got.Remaining != tk.Remaining || string(got.Challenge) != string(tk.Challenge) {
			t.Errorf("read back %+v, want %+v", got, tk)
		}
	}
	for _, bad := range []string{
		`{"valid":true,"expires":1}`,
		`{"ticket_id":"t","valid":false,"expires":1}`,
		`{"ticket_id":"t","valid":false,"worktype":"pow"}`,
		`{"ticket_id":"t","valid":false,"worktype":"pow","challenge":{}}`,
		`{"ticket_id":5}`,
		`[]`,
	} {
		if _, err := ParseTicket([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", bad, err)
		}
	}
}

// TestReceiptWire: the 202 answer keeps the bytes the server wrote
// before (sorted members, the signature in standard base64).
func TestReceiptWire(t *testing.T) {
	t.Parallel()
	b, _ := json.Marshal(&Receipt{MessageID: "m_1", Receipt: []byte{0xc2, 0xfb, 0xff}, Received: 1767225000})
	if want := `{"message_id":"m_1","receipt":"wvv/","received":1767225000}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(ErrorBody{Error: "x", Part: "b1"})
	if want := `{"error":"x","part":"b1"}`; string(b) != want {
		t.Errorf("got %s", b)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	if PartUpload(KindBlock, "b1") != "blocks/b1" || PartUpload(KindAttachment, "a1") != "attachments/a1" || PartUpload("x", "a1") != "" {
		t.Error("PartUpload")
	}
	if (HeaderPart{ID: "a1", Kind: KindAttachment}).Upload() != "attachments/a1" {
		t.Error("HeaderPart.Upload")
	}
	// docs/protocol.md §3.9 (c).
	for normalized, want := range map[string]string{
		"alice.liddell@example.org":  "9ebed237b1934538b572e9fc1b3bfdafd53e259681f6334da19bd43da160e2ae",
		"jörg@xn--bcher-kva.example": "129866071be0b4ce7bde05abab6a5ab37e6e2738615bb7357f09f0cccea0f3a1",
		"receipts@example.org":       "e56618298c4acbbd9479bf0df8ac3cc00db06b2869c0888a956286de59f42f10",
	} {
		if got := HashAddress(normalized); got != want || !IsHash(got) {
			t.Errorf("HashAddress(%q) = %s, want %s", normalized, got, want)
		}
	}
}
