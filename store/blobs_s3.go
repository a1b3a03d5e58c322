package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options put sealed parts in an S3-compatible object store instead of
// files under the data directory, so that several bridges share them.
// Parts are sealed: the object store never sees plaintext.
type S3Options struct {
	Endpoint string // host:port
	Bucket   string // made when missing
	TLS      bool   // HTTPS to the endpoint

	// AccessKey and SecretKey sign the requests (cmd/bridge takes them
	// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
	AccessKey, SecretKey string

	// PartSize is the size of one part of a multipart upload, which is
	// what an upload of a large part holds in memory (the client buffers
	// one part at a time); DefaultS3PartSize when 0.
	PartSize uint64
}

// DefaultS3PartSize is S3's smallest multipart part size, 5 MiB: a large
// part is uploaded in pieces of this size, one buffer at a time.
const DefaultS3PartSize = 5 << 20

// s3SmallBlob is how much of a blob is held before its upload starts: a
// blob that ends within it (most catalogs and text parts) is one PUT under
// its content name; a larger one streams to a temporary object, copied to
// its content name on the server when its hash is known.
const s3SmallBlob = 1 << 20

// Object names in the bucket: committed blobs under blobs/, uploads in
// progress under tmp/.
const (
	s3BlobPrefix = "blobs/"
	s3TmpPrefix  = "tmp/"
)

// s3Blobs keeps blobs as objects in one bucket.
type s3Blobs struct {
	c        *minio.Client
	bucket   string
	partSize uint64
	// ctx bounds every request; close cancels it, ending reads and
	// uploads still in flight.
	ctx    context.Context
	cancel context.CancelFunc
}

// openS3Blobs connects to the object store and makes the bucket if needed.
func openS3Blobs(ctx context.Context, o S3Options) (*s3Blobs, error) {
	if o.Endpoint == "" || o.Bucket == "" {
		return nil, errors.New("s3: endpoint and bucket are required")
	}
	c, err := minio.New(o.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure: o.TLS,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", o.Endpoint, err)
	}
	if err := makeBucket(ctx, c, o.Bucket); err != nil {
		return nil, fmt.Errorf("s3 %s bucket %s: %w", o.Endpoint, o.Bucket, err)
	}
	b := &s3Blobs{c: c, bucket: o.Bucket, partSize: o.PartSize}
	if b.partSize == 0 {
		b.partSize = DefaultS3PartSize
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// makeBucket makes the bucket unless it exists (another node may make it
// at the same time).
func makeBucket(ctx context.Context, c *minio.Client, bucket string) error {
	ok, err := c.BucketExists(ctx, bucket)
	if err != nil || ok {
		return err
	}
	err = c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		return nil
	}
	return err
}

func s3Key(hash string) string { return s3BlobPrefix + hash }

// s3NotFound maps the object store's 404 to ErrNotFound.
func s3NotFound(err error) error {
	if err == nil {
		return nil
	}
	r := minio.ToErrorResponse(err)
	if r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey" {
		return ErrNotFound
	}
	return err
}

// open streams the object: the first request is made here, so that a
// missing blob is ErrNotFound at once, and read as the caller reads.
func (b *s3Blobs) open(hash string) (io.ReadCloser, error) {
	obj, err := b.c.GetObject(b.ctx, b.bucket, s3Key(hash), minio.GetObjectOptions{})
	if err != nil {
		return nil, s3NotFound(err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s3NotFound(err)
	}
	return obj, nil
}

func (b *s3Blobs) size(hash string) (int64, error) {
	info, err := b.c.StatObject(b.ctx, b.bucket, s3Key(hash), minio.StatObjectOptions{})
	if err != nil {
		return 0, s3NotFound(err)
	}
	return info.Size, nil
}

// sync only checks: a stored object is durable.
func (b *s3Blobs) sync(ref BlobRef) error {
	n, err := b.size(ref.Hash)
	if err != nil {
		return err
	}
	if n != ref.Size {
		return fmt.Errorf("%d bytes stored, %d expected: %w", n, ref.Size, ErrNotFound)
	}
	return nil
}

func (b *s3Blobs) syncAll(refs []BlobRef) error {
	for _, ref := range refs {
		if err := b.sync(ref); err != nil {
			return fmt.Errorf("blob %s: %w", ref.Hash, err)
		}
	}
	return nil
}

// remove deletes the object; S3 answers a delete of a missing one with
// success.
func (b *s3Blobs) remove(hash string) error {
	return b.c.RemoveObject(b.ctx, b.bucket, s3Key(hash), minio.RemoveObjectOptions{})
}

func (b *s3Blobs) close() error {
	b.cancel()
	return nil
}

func (b *s3Blobs) create() (blobSink, error) {
	if b.ctx.Err() != nil {
		return nil, fmt.Errorf("s3: %w", b.ctx.Err())
	}
	return &s3Sink{b: b}, nil
}

func (b *s3Blobs) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: b.partSize}
}

// s3Sink is one blob being written: held in buf while it is small, then
// streamed to a temporary object through a pipe.
type s3Sink struct {
	b    *s3Blobs
	buf  []byte
	pw   *io.PipeWriter // set once streaming
	tmp  string
	done chan uploadResult
}

type uploadResult struct {
	info minio.UploadInfo
	err  error
}

// errBlobAborted ends the upload of an aborted blob.
var errBlobAborted = errors.New("blob aborted")

func (w *s3Sink) Write(p []byte) (int, error) {
	if w.pw == nil {
		if len(w.buf)+len(p) <= s3SmallBlob {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.stream()
		held := w.buf
		w.buf = nil
		if _, err := w.pw.Write(held); err != nil {
			return 0, err
		}
	}
	return w.pw.Write(p)
}

// stream starts a multipart upload of unknown length to a temporary
// object. The client holds one part (PartSize) at a time.
func (w *s3Sink) stream() {
	var rnd [12]byte
	rand.Read(rnd[:])
	w.tmp = s3TmpPrefix + hex.EncodeToString(rnd[:])
	pr, pw := io.Pipe()
	w.pw, w.done = pw, make(chan uploadResult, 1)
	go func() {
		info, err := w.b.c.PutObject(w.b.ctx, w.b.bucket, w.tmp, pr, -1, w.b.putOptions())
		// A failed upload stops the writer's next Write.
		pr.CloseWithError(fmt.Errorf("s3 upload: %w", errors.Join(err, io.ErrClosedPipe)))
		w.done <- uploadResult{info, err}
	}()
}

// commit stores the blob under its content name: a small one with one
// PUT, a streamed one by finishing its upload and copying it on the
// server. Both are complete when commit returns.
func (w *s3Sink) commit(ref BlobRef, _ bool) error {
	if w.pw == nil {
		_, err := w.b.c.PutObject(w.b.ctx, w.b.bucket, s3Key(ref.Hash), bytes.NewReader(w.buf), int64(len(w.buf)), w.b.putOptions())
		w.buf = nil
		return err
	}
	w.pw.Close()
	res := <-w.done
	if res.err != nil {
		return fmt.Errorf("s3 upload: %w", res.err)
	}
	defer w.b.c.RemoveObject(w.b.ctx, w.b.bucket, w.tmp, minio.RemoveObjectOptions{})
	if res.info.Size != ref.Size {
		return fmt.Errorf("s3 upload: %d bytes stored, %d written", res.info.Size, ref.Size)
	}
	if n, err := w.b.size(ref.Hash); err == nil && n == ref.Size {
		return nil // the same bytes are stored already
	}
	// ComposeObject copies on the server, in parts past 5 GiB.
	_, err := w.b.c.ComposeObject(w.b.ctx,
		minio.CopyDestOptions{Bucket: w.b.bucket, Object: s3Key(ref.Hash)},
		minio.CopySrcOptions{Bucket: w.b.bucket, Object: w.tmp})
	if err != nil {
		return fmt.Errorf("s3 copy: %w", err)
	}
	return nil
}

// abort fails the upload, which the client then aborts on the server.
func (w *s3Sink) abort() error {
	w.buf = nil
	if w.pw == nil {
		return nil
	}
	w.pw.CloseWithError(errBlobAborted)
	if res := <-w.done; res.err == nil {
		// Finished before it saw the abort: remove what it stored.
		return w.b.c.RemoveObject(w.b.ctx, w.b.bucket, w.tmp, minio.RemoveObjectOptions{})
	}
	return nil
}

// walk lists committed blobs last written before cutoff.
func (b *s3Blobs) walk(ctx context.Context, cutoff time.Time, fn func(hash string)) error {
	for obj := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: s3BlobPrefix, Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		hash := strings.TrimPrefix(obj.Key, s3BlobPrefix)
		if ValidHash(hash) && obj.LastModified.Before(cutoff) {
			fn(hash)
		}
	}
	return ctx.Err()
}

// sweepTmp removes temporary objects and unfinished multipart uploads
// left by a process that died mid-write.
func (b *s3Blobs) sweepTmp(ctx context.Context, cutoff time.Time) {
	for obj := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: s3TmpPrefix, Recursive: true}) {
		if obj.Err == nil && obj.LastModified.Before(cutoff) {
			b.c.RemoveObject(ctx, b.bucket, obj.Key, minio.RemoveObjectOptions{})
		}
	}
	for up := range b.c.ListIncompleteUploads(ctx, b.bucket, s3TmpPrefix, true) {
		if up.Err == nil && up.Initiated.Before(cutoff) {
			b.c.RemoveIncompleteUpload(ctx, b.bucket, up.Key)
		}
	}
}
