package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"mime"
	"strings"
	"time"

	"tollbridge/store"
)

// bounce tells the sender that a recipient failed for good, with an RFC
// 3464 delivery status notification in their INBOX, then closes the
// recipient. The DSN is stored first: a crash in between may repeat the
// notice but never lose it.
func (o *Outbox) bounce(ctx context.Context, log *slog.Logger, m *store.OutboxMessage, r *store.OutboxRecipient, f *failure) {
	ctx = context.WithoutCancel(ctx)
	log.Warn("bounced", "status", f.Status, "err", f.Err)
	if !notifies(r.DSN.Notify, "FAILURE") {
		log.Info("no bounce notice: NOTIFY", "notify", r.DSN.Notify)
	} else if err := o.sendDSN(ctx, m, r, f); err != nil {
		log.Error("bounce notice", "err", err)
	}
	o.finish(ctx, log, r, store.Delivery{Outcome: store.OutcomeBounced, Detail: f.Error()})
	if o.metrics.Bounced != nil {
		o.metrics.Bounced()
	}
}

func (o *Outbox) sendDSN(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient, f *failure) error {
	u, headers, err := o.noticeParts(ctx, m)
	if err != nil {
		return err
	}
	return o.bounceTo(ctx, u, o.dsn(m, r, f, headers, o.now()))
}

// noticeParts is what every notice to the sender needs: the sender's
// local user (whose INBOX gets it) and the original message's header
// section, when the catalog still opens (nil otherwise).
func (o *Outbox) noticeParts(ctx context.Context, m *store.OutboxMessage) (*store.User, []byte, error) {
	if m.UserID == 0 {
		return nil, nil, fmt.Errorf("sender %s is no longer a local user", m.Sender)
	}
	u, err := o.st.UserByID(ctx, m.UserID)
	if err != nil {
		return nil, nil, err
	}
	var headers []byte
	if _, cat, err := o.openCatalog(m); err == nil {
		headers, _ = o.text.Headers(cat)
	}
	return u, headers, nil
}

// dsn builds the multipart/report of RFC 3464: a note for people, the
// machine-readable status, and the original message's header.
func (o *Outbox) dsn(m *store.OutboxMessage, r *store.OutboxRecipient, f *failure, headers []byte, now time.Time) []byte {
	var rnd [8]byte
	rand.Read(rnd[:])
	boundary := "tollbridge-dsn-" + hex.EncodeToString(rnd[:])
	date := now.UTC().Format(time.RFC1123Z)
	action, status := "failed", f.Status
	if status == "" || status[0] != '5' && status[0] != '4' {
		status = "5.0.0"
	}
	reason := oneLine(f.Err.Error())
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", o.cfg.Hostname)
	w("To: <%s>", m.Sender)
	w("Subject: %s", mime.QEncoding.Encode("utf-8", "Undelivered Mail Returned to Sender"))
	w("Date: %s", date)
	w("Message-ID: <dsn.%s.%d@%s>", hex.EncodeToString(rnd[:]), r.ID, o.cfg.Hostname)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w(`Content-Type: multipart/report; report-type=delivery-status; boundary="%s"`, boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Description: Notification")
	w("")
	w("This is the mail system at %s.", o.cfg.Hostname)
	w("")
	w("Your message could not be delivered to the recipient below. It was")
	w("tried %d time(s) since %s.", r.Tries, m.Created.UTC().Format(time.RFC1123Z))
	w("")
	w("<%s>: %s", r.Recipient, reason)
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("Content-Description: Delivery report")
	w("")
	b.WriteString(o.statusFields(m, r, action, status, reason, date))
	if len(headers) > 0 {
		w("--%s", boundary)
		w("Content-Type: text/rfc822-headers")
		w("Content-Description: Undelivered message headers")
		w("")
		b.Write(bytes.TrimRight(headers, "\r\n"))
		w("")
		w("")
	}
	w("--%s--", boundary)
	return b.Bytes()
}

// oneLine keeps a reason on one line of reasonable length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 900 {
		s = s[:900] + "…"
	}
	return s
}
