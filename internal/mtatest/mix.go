package mtatest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
)

// MixMessage is message i of a realistic size mix, from
// alice@example.org to bob@example.net: most mail is a few KiB of text,
// some a mid-size attachment, a few a large one (75% 4 KiB, 20% 60 KiB,
// 5% 1 MiB). Its Subject is "message i" and its Message-ID
// <bench.i@example.org>.
func MixMessage(i int) string { return MixMessageNamed(i, "bench", fmt.Sprint(i)) }

// MixMessageNamed is message i of the mix with Subject "message NAME"
// and Message-ID <PREFIX.NAME@example.org>: a benchmark that sends the
// mix again in rounds names each message apart, so no round repeats
// another's Message-ID.
func MixMessageNamed(i int, prefix, name string) string {
	head := fmt.Sprintf("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: message %s\r\n"+
		"Message-ID: <%s.%s@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n", name, prefix, name)
	text := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 70)
	switch {
	case i%20 == 19:
		return head + attachmentMessage(text, 1<<20)
	case i%4 == 3:
		return head + attachmentMessage(text, 60<<10)
	}
	return head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
}

// Attachments returns the random attachment bodies of the mix by size in
// bytes, base64 in lines of 76; callers must not change the map. They
// are made on the first call, once per process, so a benchmark that calls
// Attachments before its timer spends its time sending, not generating.
func Attachments() map[int]string { return attachments() }

// attachments makes the bodies once.
var attachments = sync.OnceValue(func() map[int]string {
	m := map[int]string{}
	for _, size := range []int{60 << 10, 1 << 20} {
		blob := make([]byte, size)
		rand.Read(blob)
		m[size] = base64Lines(blob)
	}
	return m
})

func base64Lines(blob []byte) string {
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

func attachmentMessage(text string, size int) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(text)
	b.WriteString("\r\n--b\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(attachments()[size])
	b.WriteString("--b--\r\n")
	return b.String()
}
