package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"time"

	"tollbridge/store"
)

// sendSuccess puts an RFC 3464 success notice (Action: delivered) into
// the sender's INBOX for a recipient whose NOTIFY asked for it (RFC 3461).
// On the ticketed route it carries the receiving server's receipt and the
// header it signs as attachments, with what the verification found.
func (o *Outbox) sendSuccess(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient, ok *success) error {
	u, headers, err := o.noticeParts(ctx, m)
	if err != nil {
		return err
	}
	return o.bounceTo(ctx, u, o.successDSN(m, r, ok, headers, o.now()))
}

// successDSN builds the notice. Success notices return the headers only,
// whatever RET says (RFC 3461 §4.3 leaves the content to failures).
func (o *Outbox) successDSN(m *store.OutboxMessage, r *store.OutboxRecipient, ok *success, headers []byte, now time.Time) []byte {
	var rnd [8]byte
	rand.Read(rnd[:])
	boundary := "tollbridge-dsn-" + hex.EncodeToString(rnd[:])
	date := now.UTC().Format(time.RFC1123Z)
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", o.cfg.Hostname)
	w("To: <%s>", m.Sender)
	w("Subject: %s", mime.QEncoding.Encode("utf-8", "Delivered: your message to "+r.Recipient))
	w("Date: %s", date)
	w("Message-ID: <dsn.%s.%d@%s>", hex.EncodeToString(rnd[:]), r.ID, o.cfg.Hostname)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w(`Content-Type: multipart/report; report-type=delivery-status; boundary="%s"`, boundary)
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Description: Notification")
	w("")
	b.WriteString(o.successText(r, ok, date))
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("Content-Description: Delivery report")
	w("")
	// RFC 3461 §6.2: mail passed on to a system that cannot confirm
	// delivery (legacy SMTP) is "relayed", not "delivered".
	action := "delivered"
	if ok.route == "legacy" {
		action = "relayed"
	}
	b.WriteString(o.statusFields(m, r, action, "2.0.0", receiptDiagnostic(ok), date))
	if len(ok.receipt) > 0 {
		attach(&b, boundary, "application/pgp-signature", "receipt.sig", ok.receipt)
		attach(&b, boundary, "application/json", "header.json", ok.header)
	}
	if len(headers) > 0 {
		w("--%s", boundary)
		w("Content-Type: text/rfc822-headers")
		w("Content-Description: Delivered message headers")
		w("")
		b.Write(bytes.TrimRight(headers, "\r\n"))
		w("")
		w("")
	}
	w("--%s--", boundary)
	return b.Bytes()
}

// successText is the notice for people: where the message went and what
// the receipt proves.
func (o *Outbox) successText(r *store.OutboxRecipient, ok *success, date string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\n", o.cfg.Hostname)
	fmt.Fprintf(&b, "Your message was delivered to <%s> (%s route) at %s.\r\n", r.Recipient, ok.route, date)
	if len(ok.receipt) == 0 {
		b.WriteString("No receipt was given for this route.\r\n")
		return b.String()
	}
	sum := sha256.Sum256(ok.header)
	fmt.Fprintf(&b, "\r\nThe receiving server signed a receipt (receipt.sig) over the exact\r\n")
	fmt.Fprintf(&b, "header it accepted (header.json, SHA-256 %s),\r\n", hex.EncodeToString(sum[:]))
	fmt.Fprintf(&b, "under its id %s for the message.\r\n", ok.remoteID)
	fmt.Fprintf(&b, "Verified with the key of %s", ok.check.Signer)
	if ok.check.Fingerprint != "" {
		fmt.Fprintf(&b, " (%s)", ok.check.Fingerprint)
	}
	fmt.Fprintf(&b, ": %s.\r\n", ok.check.Result)
	if ok.check.Result == ReceiptPass {
		b.WriteString("It proves that server accepted a message with that header, which\r\n" +
			"names the recipient's key and the SHA-256 of every encrypted part.\r\n" +
			"Check it again with: bridge receipt verify THIS-MESSAGE.eml\r\n")
	}
	return b.String()
}

// statusFields is the message/delivery-status body of RFC 3464 §2.
func (o *Outbox) statusFields(m *store.OutboxMessage, r *store.OutboxRecipient, action, status, diagnostic, date string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("Reporting-MTA: dns; %s", o.cfg.Hostname)
	if m.EnvID != "" {
		w("Original-Envelope-Id: %s", m.EnvID)
	}
	w("Arrival-Date: %s", m.Created.UTC().Format(time.RFC1123Z))
	w("")
	if r.DSN.ORCPT != "" {
		w("Original-Recipient: %s", r.DSN.ORCPT)
	}
	w("Final-Recipient: rfc822; %s", r.Recipient)
	w("Action: %s", action)
	w("Status: %s", status)
	w("Diagnostic-Code: X-tollbridge; %s", diagnostic)
	w("Last-Attempt-Date: %s", date)
	w("")
	return b.String()
}

func receiptDiagnostic(ok *success) string {
	if len(ok.receipt) == 0 {
		return "delivered (" + ok.route + "), no receipt"
	}
	return "delivered, remote id " + ok.remoteID + ", receipt " + ok.check.Result
}

// attach writes one base64 attachment part.
func attach(b *bytes.Buffer, boundary, ctype, name string, data []byte) {
	fmt.Fprintf(b, "--%s\r\nContent-Type: %s; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary, ctype, name, name)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n\r\n")
}
