package translate

import "io"

// PartWriter receives the plaintext of one part. Exactly one of Commit or
// Abort ends it.
type PartWriter interface {
	io.Writer
	// Commit makes the part final.
	Commit() error
	// Abort discards what was written; the part does not exist afterwards.
	Abort() error
}

// Sink stores the parts Split produces. After a PartWriter is aborted,
// CreatePart may be called again with the same id.
type Sink interface {
	CreatePart(id, kind string) (PartWriter, error)
}

// Source gives Join the plaintext of each part.
type Source interface {
	OpenPart(id string) (io.ReadCloser, error)
}
