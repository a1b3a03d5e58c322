package mailbench

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
)

// mixMessage is message i of round r, in the size mix of cmd/bridge's
// BenchmarkEndToEnd (75% 4 KiB text, 20% 60 KiB with an attachment, 5%
// 1 MiB). The round is in the Message-ID so no round repeats another's.
func mixMessage(r, i int) string {
	head := fmt.Sprintf("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: message %d.%d\r\n"+
		"Message-ID: <mailbench.%d.%d@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n", r, i, r, i)
	text := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 70)
	switch {
	case i%20 == 19:
		return head + attachmentMessage(text, 1<<20)
	case i%4 == 3:
		return head + attachmentMessage(text, 60<<10)
	}
	return head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
}

// attachments are the random attachment bodies, base64 in lines, made
// once so the client spends its time sending, not generating.
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
