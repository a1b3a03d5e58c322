package ticketserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A ticket announces how many bytes its message has. Parallel PUTs of
// different parts each pass the check made before the body is read; the
// store checks again when it records them, so the ticket never holds more.
func TestParallelUploadsStayWithinAnnouncedBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4, 1)
	const parts, announced = 20, 50_000
	q := request(alice, e.bob.AddressHash, announced)
	q["parts"] = map[string]any{"blocks": 0, "attachments": parts, "bytes": announced}
	ans := e.expect(201, "POST", "/v1/tickets", q)
	id := ans["ticket_id"].(string)
	if ans["valid"] != true {
		proofs := solve(t, ans, 1)
		e.expect(200, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": proofs}})
	}

	// Every request is sent with its headers at once and Expect:
	// 100-continue, so the client sends a body only once its handler asks
	// for it, that is after the handler's room check. The bodies are
	// released once every handler has asked: all checks ran first.
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = time.Minute
	client := &http.Client{Transport: tr}
	release := make(chan struct{})
	asked := make(chan struct{}, parts)
	var wg sync.WaitGroup
	statuses := make([]int, parts)
	for i := range parts {
		pr, pw := io.Pipe()
		go func() {
			<-release
			pw.Write(bytes.Repeat([]byte{byte(i)}, announced))
			pw.Close()
		}()
		body := &firstRead{r: pr, asked: asked}
		req, _ := http.NewRequest("PUT", e.srv.URL+"/v1/tickets/"+id+"/attachments/a"+string(rune('a'+i)), body)
		req.ContentLength = announced
		req.Header.Set("Expect", "100-continue")
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	deadline := time.After(30 * time.Second)
	for range parts {
		select {
		case <-asked:
		case <-deadline:
			t.Fatal("not every upload handler asked for its body within 30 s")
		}
	}
	close(release)
	wg.Wait()

	ups, err := e.st.Uploads(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, ref := range ups {
		total += ref.Size
	}
	if total > announced {
		t.Errorf("ticket announced %d bytes but holds %d in %d uploads (statuses %v)", announced, total, len(ups), statuses)
	}
}

// Re-uploading a part replaces it; the replaced blob is deleted at once,
// so one valid ticket cannot fill the disk by uploading again and again.
func TestReuploadLeavesNoGarbage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4, 1)
	m := e.message(alice)
	id := e.validTicket(m)
	const rounds = 30
	for i := range rounds {
		b := bytes.Repeat([]byte{byte(i)}, len(m.a1))
		e.expect(200, "PUT", "/v1/tickets/"+id+"/attachments/a1", b)
	}
	var files int
	var bytesOnDisk int64
	filepath.Walk(filepath.Join(e.dir, "data", "blobs"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && len(info.Name()) == 64 {
			files++
			bytesOnDisk += info.Size()
		}
		return nil
	})
	if bytesOnDisk > 2*m.size() {
		t.Errorf("ticket of %d announced bytes left %d blob files, %d bytes on disk", m.size(), files, bytesOnDisk)
	}
}

// firstRead is a request body that says when it is first read: with
// Expect: 100-continue, when the server's handler asked for the body.
type firstRead struct {
	r     io.Reader
	asked chan<- struct{}
	once  sync.Once
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(func() { f.asked <- struct{}{} })
	return f.r.Read(p)
}
