package translate

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// A Joiner renders exactly what Join does, also when its buffers go from
// one message to the next (base64 lines of other lengths, a failed part
// in between) and from goroutine to goroutine.
func TestJoinerMatchesJoin(t *testing.T) {
	t.Parallel()
	var msgs [][]byte
	for i, line := range []int{76, 64, 76, 40} {
		data := strings.Repeat(fmt.Sprintf("attachment %d ", i), 200*(i+1))
		msgs = append(msgs, []byte("Subject: m"+fmt.Sprint(i)+"\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"+
			"Content-Type: text/plain\r\n\r\nhello "+fmt.Sprint(i)+"\r\n--b\r\nContent-Type: application/octet-stream\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n"+base64Lines([]byte(data), line)+"--b--\r\n"))
	}
	type job struct {
		c    *Catalog
		sink *MemorySink
		want []byte
	}
	var jobs []job
	for _, m := range msgs {
		c, sink := roundTrip(t, m, Options{})
		var want bytes.Buffer
		if err := Join(&want, c, sink); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want.Bytes(), m) {
			t.Fatalf("Join does not give the message back")
		}
		jobs = append(jobs, job{c, sink, want.Bytes()})
	}
	var jr Joiner
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				j := jobs[(g+k)%len(jobs)]
				if k%7 == 3 {
					// A part that fails its check leaves the buffers mid-way.
					if err := jr.Join(io.Discard, j.c, NewMemorySink()); err == nil {
						t.Error("Joiner: a missing part did not fail")
					}
					continue
				}
				var got bytes.Buffer
				if err := jr.Join(&got, j.c, j.sink); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got.Bytes(), j.want) {
					t.Errorf("Joiner rendered %d bytes unlike Join's %d", got.Len(), len(j.want))
					return
				}
			}
		}()
	}
	wg.Wait()
}
