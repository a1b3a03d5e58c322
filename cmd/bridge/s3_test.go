package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"tollbridge/internal/s3test"
)

// TestServeOnS3: bob's `bridge serve` keeps sealed parts in an S3 bucket
// ([store] s3_endpoint, credentials from the environment). Mail from
// alice (files) arrives, is filed and read back byte for byte over IMAP,
// a 6 MiB attachment included (a multipart upload); bob's reply is sealed
// into the bucket and delivered from it. Nothing lands in bob's blobs/.
func TestServeOnS3(t *testing.T) {
	t.Parallel()
	b := s3test.New(t)
	l := processLayout(t, 8, 2)
	netPath := l.configPath(l.Sites[1])
	f, err := os.OpenFile(netPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[store]\ns3_endpoint = %q\ns3_bucket = %q\ns3_tls = false\n", b.Endpoint, b.Name)
	f.Close()
	org := serveProcess(t, l.configPath(l.Sites[0]))
	nett := serveProcessEnv(t, netPath, []string{"AWS_ACCESS_KEY_ID=" + b.AccessKey, "AWS_SECRET_ACCESS_KEY=" + b.SecretKey})

	big := bigMessage("alice@example.org", "bob@example.net", "s3-big", 6<<20)
	if err := submitRaw(org.cfg.SMTP.Submission, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, big); err != nil {
		t.Fatal(err)
	}
	var got []byte
	waitFor(t, "delivery to bob on S3", 60*time.Second, func() bool {
		got = inbox(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net")["s3-big@example.org"]
		return got != nil
	})
	if body, _ := stripTrace(got); !bytes.Equal(body, []byte(big)) {
		t.Fatalf("bob reads %d bytes, %d were sent", len(body), len(big))
	}
	reply := plainMessage("bob@example.net", "alice@example.org", "s3-reply")
	if err := submitRaw(nett.cfg.SMTP.Submission, "bob@example.net", "pw-bob@example.net", []string{"alice@example.org"}, reply); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery from bob on S3", 60*time.Second, func() bool {
		ids := imapMessageIDs(t, org.cfg.IMAP.Listen, "alice@example.org", "pw-alice@example.org")
		return len(ids) == 1 && ids[0] == "s3-reply@example.org"
	})
	if n := countObjects(t, b, "blobs/"); n < 4 {
		t.Fatalf("%d blobs in the bucket", n)
	}
	if n := countFiles(t, filepath.Join(nett.cfg.Server.DataDir, "blobs")); n != 0 {
		t.Fatalf("%d blob files on disk beside S3", n)
	}
	org.stop()
	nett.stop()
}

// bigMessage is a message with a base64 attachment of n bytes.
func bigMessage(from, to, id string, n int) string {
	var sb strings.Builder
	sb.WriteString("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + id + "\r\nMessage-ID: <" + id + "@example.org>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	raw := make([]byte, 57) // one 76-character base64 line
	for i := 0; i < n; i += len(raw) {
		for j := range raw {
			raw[j] = byte(i/len(raw) + j*7)
		}
		sb.WriteString(base64.StdEncoding.EncodeToString(raw) + "\r\n")
	}
	sb.WriteString("--b1--\r\n")
	return sb.String()
}

// countObjects counts the objects under prefix in b.
func countObjects(t *testing.T, b s3test.Bucket, prefix string) int {
	t.Helper()
	c, err := b.Client()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for obj := range c.ListObjects(context.Background(), b.Name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		n++
	}
	return n
}

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}
