package conformance_test

import (
	"bytes"
	"regexp"
	"strings"
)

// handMessage is an RFC 5322 message with the catalog an independent
// sender writes for it by hand (docs/protocol.md §3.4).
type handMessage struct {
	raw     []byte // the message as the sender's client submitted it
	catalog []byte
	parts   []*part
}

func (h *handMessage) build(e envelope, mime *node, parts ...*part) *handMessage {
	var b bytes.Buffer
	mime.rebuild(&b)
	h.raw, h.catalog, h.parts = b.Bytes(), catalogJSON(e, parts, mime), parts
	return h
}

// pdfBytes is binary attachment content, long enough for several lines.
func pdfBytes() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	for i := 0; i < 300; i++ {
		b.WriteByte(byte(i * 7))
	}
	b.WriteString("\n%%EOF\n")
	return b.Bytes()
}

// multipartMessage is a multipart/mixed message from alice to bob: a UTF-8
// text block in base64 (lines of 76), a PDF attachment in base64 (lines
// of 64), a preamble and a Latin-1 epilogue (a {"bytes"} segment). The
// From: field names from.
func multipartMessage(from, id string) *handMessage {
	body := strings.Repeat("Grüße aus dem Konformitätstest, Bob. ", 5) + "\r\nZweite Zeile.\r\n"
	b1 := &part{id: "b1", kind: "block", ctype: "text/plain; charset=utf-8", plain: []byte(body)}
	a1 := &part{id: "a1", kind: "attachment", ctype: `application/pdf; name="report.pdf"`, name: "résumé.pdf", plain: pdfBytes()}
	mime := &node{
		header: "From: Alice Example <" + from + ">\r\n" +
			"To: Bob Example <bob@example.net>\r\n" +
			"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from the conformance suite\r\n" +
			"Date: Tue, 24 Nov 2026 11:00:00 +0100\r\n" +
			"Message-ID: <" + id + "@example.org>\r\n" +
			"MIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed;\r\n boundary=\"=-b0undary\"\r\n" +
			"\r\n",
		body: []item{
			text("This is a multi-part message in MIME format.\r\n--=-b0undary\r\n"),
			child(&node{header: "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
				body: []item{base64Lines(b1, 76)}}),
			text("--=-b0undary\r\n"),
			child(&node{header: "Content-Type: application/pdf;\r\n name=\"report.pdf\"\r\n" +
				"Content-Disposition: attachment;\r\n filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n" +
				"Content-Transfer-Encoding: base64\r\n\r\n",
				body: []item{base64Lines(a1, 64)}}),
			text("--=-b0undary--\r\n"),
			{seg: []byte("caf\xe9 epilogue\r\n")},
		},
	}
	return new(handMessage).build(envelope{
		from: "alice@example.org", to: []string{"bob@example.net"},
		subject: "Grüße from the conformance suite", date: "2026-11-24T10:00:00Z",
		messageID: "<" + id + "@example.org>",
	}, mime, b1, a1)
}

// plainMessage is a one-part text message without a Date: field, its body
// stored with identity.
func plainMessage(id string) *handMessage { return plainMessageFrom("alice@example.org", id) }

// plainMessageFrom is plainMessage sent by from.
func plainMessageFrom(from, id string) *handMessage {
	b1 := &part{id: "b1", kind: "block", ctype: "text/plain", plain: []byte("Unsigned, and that is fine.\r\n-- \r\nAlice\r\n")}
	mime := &node{
		header: "From: " + from + "\r\nTo: bob@example.net\r\nSubject: no signature\r\nMessage-ID: <" + id + "@example.org>\r\n\r\n",
		body:   []item{identity(b1)},
	}
	return new(handMessage).build(envelope{
		from: from, to: []string{"bob@example.net"}, subject: "no signature", messageID: "<" + id + "@example.org>",
	}, mime, b1)
}

// oddMessage is legal but unusual: a raw Latin-1 header section (a
// {"bytes"} segment), an empty leaf (no part), a forwarded message (a node
// inside a node), and bodies kept with identity, one of them base64 text.
func oddMessage(id string) *handMessage {
	b1 := &part{id: "t1", kind: "block", ctype: "text/plain; charset=iso-8859-1", plain: []byte("Gr\xfc\xdfe in Latin-1.\r\n")}
	b2 := &part{id: "t2", kind: "block", ctype: "text/plain", plain: []byte("Forwarded.\r\n")}
	a1 := &part{id: "x9", kind: "attachment", ctype: "application/octet-stream", name: "x.bin", plain: []byte("AAEC/f7/\r\n")}
	mime := &node{
		header: "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Caf\xe9\r\n" +
			"Date: 24 Nov 2026 10:00:00 GMT\r\nMessage-ID: <" + id + "@example.org>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=o\r\n\r\n",
		body: []item{
			text("--o\r\n"),
			child(&node{header: "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", body: []item{identity(b1)}}),
			text("\r\n--o\r\n"),
			child(&node{header: "Content-Type: text/plain\r\n\r\n"}),
			text("\r\n--o\r\n"),
			child(&node{header: "Content-Type: message/rfc822\r\n\r\n", body: []item{
				child(&node{header: "From: zoe@example.com\r\nSubject: inner\r\n\r\n", body: []item{identity(b2)}}),
			}}),
			text("\r\n--o\r\n"),
			child(&node{header: "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n",
				body: []item{identity(a1)}}),
			text("--o--\r\n"),
		},
	}
	return new(handMessage).build(envelope{
		from: "alice@example.org", to: []string{"bob@example.net"}, subject: "Café", date: "2026-11-24T10:00:00Z",
		messageID: "<" + id + "@example.org>",
	}, mime, b1, b2, a1)
}

// sentMessage is what bob's mail client submits to his bridge for alice:
// encoded words, a folded header, an RFC 2231 file name, a Bcc: field, a
// base64 attachment in lines of 76.
func sentMessage() string {
	bin := make([]byte, 200)
	for i := range bin {
		bin[i] = byte(i)
	}
	return "From: Bob Example <bob@example.net>\r\n" +
		"To: Alice Example <alice@example.org>\r\n" +
		"Bcc: Alice Again <alice@example.org>\r\n" +
		"Subject: =?ISO-8859-1?Q?Caf=E9?= report\r\n" +
		"Date: Tue, 24 Nov 2026 11:30:00 +0100\r\n" +
		"Message-ID: <s1.conformance@example.net>\r\n" +
		"In-Reply-To: <m1.conformance@example.org>\r\n" +
		"References: <m1.conformance@example.org>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"sep\"\r\n" +
		"\r\n" +
		"--sep\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"Hello Alice, Grüße.\r\n" +
		"--sep\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment;\r\n filename*=UTF-8''r%C3%A9sum%C3%A9.bin\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		string(cutBase64(bin, 76)) +
		"--sep--\r\n"
}

// withoutBcc is msg less its Bcc: field (docs/protocol.md §3.5).
func withoutBcc(msg string) string {
	return bccField.ReplaceAllString(msg, "")
}

var bccField = regexp.MustCompile(`(?im)^Bcc:[^\r\n]*\r\n([ \t][^\r\n]*\r\n)*`)

// sentWant is what the catalog of sentMessage must say.
var sentWant = catalogWant{
	fields: map[string]any{"from": "bob@example.net", "subject": "Café report", "date": "2026-11-24T10:30:00Z",
		"message_id": "<s1.conformance@example.net>", "in_reply_to": "<m1.conformance@example.org>"},
	lists: map[string]string{"to": `["alice@example.org"]`, "cc": `[]`, "references": `["<m1.conformance@example.org>"]`},
	parts: []string{`attachment application/octet-stream "résumé.bin"`, `block text/plain; charset=utf-8 ""`},
}

// groupMessage goes to alice, Cc carol, Bcc dave. It has no Date: and
// no Message-ID: field, a raw Latin-1 subject, a folded Content-Type, an
// empty leaf, an RFC 2047 name and an RFC 2231 continued filename, and a
// forwarded message (message/rfc822).
func groupMessage() string {
	return "From: bob@example.net\r\n" +
		"To: Alice <alice@example.org>\r\n" +
		"Cc: \"Carol C.\" <carol@example.org>\r\n" +
		"Bcc: dave@example.org\r\n" +
		"Subject: Caf\xe9 8bit\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n" +
		"\r\n" +
		"--outer\r\n" +
		"Content-Type: text/plain;\r\n charset=utf-8;\r\n format=flowed\r\n" +
		"\r\n" +
		"See the forwarded note. \r\nBye.\r\n" +
		"--outer\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"\r\n--outer\r\n" +
		"Content-Type: application/octet-stream; name=\"=?UTF-8?Q?na=C3=AFve.bin?=\"\r\n" +
		"Content-Disposition: attachment;\r\n filename*0*=UTF-8''na%C3%AF;\r\n filename*1*=ve.bin\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		"AAEC/f7/\r\n" +
		"--outer\r\n" +
		"Content-Type: message/rfc822\r\n" +
		"\r\n" +
		"From: zoe@example.com\r\n" +
		"Subject: inner\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"Inner body.\r\n" +
		"--outer--\r\n"
}

// groupWant is what the catalog of groupMessage must say.
var groupWant = catalogWant{
	fields: map[string]any{"from": "bob@example.net", "subject": "Café 8bit", "date": "", "message_id": "", "in_reply_to": ""},
	lists:  map[string]string{"to": `["alice@example.org"]`, "cc": `["carol@example.org"]`, "references": `[]`},
	parts: []string{
		`attachment application/octet-stream; name="=?UTF-8?Q?na=C3=AFve.bin?=" "naïve.bin"`,
		`block text/plain; charset=us-ascii ""`,
		`block text/plain; charset=utf-8; format=flowed ""`,
	},
}

// plainText is a minimal message from bob to alice; its subject has
// adjacent encoded words (the space between them is dropped, RFC 2047
// §6.2) and raw UTF-8: "Grüße aus Köln".
func plainText(id string) string {
	return "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC?= =?UTF-8?Q?=C3=9Fe?= aus Köln\r\n" +
		"Message-ID: <" + id + "@example.net>\r\n\r\nShort.\r\n"
}
