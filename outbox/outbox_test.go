package outbox

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"tollbridge/store"
)

func TestBackoffDoublesToTheCap(t *testing.T) {
	t.Parallel()
	o := New(Options{})
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := o.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := o.backoff(1000); got != time.Hour {
		t.Errorf("backoff(1000) = %s", got)
	}
}

func TestDSNIsAMultipartReport(t *testing.T) {
	t.Parallel()
	o := New(Options{Hostname: "mail.example.org"})
	m := &store.OutboxMessage{Sender: "alice@example.org", Created: time.Unix(1_800_000_000, 0)}
	r := &store.OutboxRecipient{ID: 7, Recipient: "nobody@example.net", Tries: 1}
	f := permanent("5.1.1", "nobody@example.net: no such user at https://mail.example.net")
	raw := o.dsn(m, r, f, []byte("From: alice@example.org\r\nSubject: lost\r\n\r\n"), time.Unix(1_800_000_100, 0))

	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	ct, params, _ := e.Header.ContentType()
	if ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %s %v", ct, params)
	}
	if e.Header.Get("To") != "<alice@example.org>" || e.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("header: %v", e.Header)
	}
	var types []string
	var status string
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		t0, _, _ := p.Header.ContentType()
		types = append(types, t0)
		b, _ := io.ReadAll(p.Body)
		if t0 == "message/delivery-status" {
			status = string(b)
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("parts = %v", types)
	}
	for _, want := range []string{"Reporting-MTA: dns; mail.example.org", "Final-Recipient: rfc822; nobody@example.net", "Action: failed", "Status: 5.1.1"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
}

func TestSMTPFailureClassification(t *testing.T) {
	t.Parallel()
	tg := relayTarget{addr: "relay:25"}
	var f *failure
	errors.As(smtpFailure(tg, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no"}), &f)
	if f.Temporary || f.Status != "5.1.1" {
		t.Errorf("550: %+v", f)
	}
	errors.As(smtpFailure(tg, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.NoEnhancedCode, Message: "later"}), &f)
	if !f.Temporary || f.Status != "4.0.0" {
		t.Errorf("451: %+v", f)
	}
	errors.As(smtpFailure(tg, io.ErrUnexpectedEOF), &f)
	if !f.Temporary {
		t.Errorf("network error: %+v", f)
	}
}
