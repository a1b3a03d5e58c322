package translate

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"sync"
)

// MemorySink keeps parts in memory. It is both a Sink for Split and a
// Source for Join, for tests and small messages.
type MemorySink struct {
	mu    sync.Mutex
	parts map[string]memoryPart
}

type memoryPart struct {
	kind string
	data []byte
}

// NewMemorySink returns an empty MemorySink.
func NewMemorySink() *MemorySink {
	return &MemorySink{parts: map[string]memoryPart{}}
}

// CreatePart implements Sink. It refuses an id that is already committed.
func (m *MemorySink) CreatePart(id, kind string) (PartWriter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.parts[id]; ok {
		return nil, fmt.Errorf("part %s already exists", id)
	}
	return &memoryWriter{sink: m, id: id, kind: kind}, nil
}

// Put stores a part directly, as if Split had written it.
func (m *MemorySink) Put(id, kind string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts[id] = memoryPart{kind: kind, data: data}
}

// OpenPart implements Source.
func (m *MemorySink) OpenPart(id string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.parts[id]
	if !ok {
		return nil, fmt.Errorf("part %s not found", id)
	}
	return io.NopCloser(bytes.NewReader(p.data)), nil
}

// Part returns the plaintext of part id and whether it exists.
func (m *MemorySink) Part(id string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.parts[id]
	return p.data, ok
}

// IDs returns the ids of the committed parts, sorted.
func (m *MemorySink) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.parts))
	for id := range m.parts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

type memoryWriter struct {
	sink *MemorySink
	id   string
	kind string
	buf  bytes.Buffer
	done bool
}

func (w *memoryWriter) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("part %s: write after commit or abort", w.id)
	}
	return w.buf.Write(b)
}

func (w *memoryWriter) Commit() error {
	if w.done {
		return fmt.Errorf("part %s: already committed or aborted", w.id)
	}
	w.done = true
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	if _, ok := w.sink.parts[w.id]; ok {
		return fmt.Errorf("part %s already exists", w.id)
	}
	w.sink.parts[w.id] = memoryPart{kind: w.kind, data: w.buf.Bytes()}
	return nil
}

func (w *memoryWriter) Abort() error {
	w.done = true
	w.buf = bytes.Buffer{}
	return nil
}
