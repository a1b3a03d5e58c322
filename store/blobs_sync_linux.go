package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS makes everything written to the blobs' file system durable with
// one syncfs(2): the files and the directory entries of a whole group of
// blobs at once, instead of two fsyncs per blob.
func (b *fileBlobs) syncFS(refs []BlobRef) error { return SyncFS(b.dir, nil) }

// SyncFS makes files written in dir durable, with their directory entries:
// on Linux with one syncfs(2) of dir's file system, elsewhere by an fsync
// of each of files and of dir. It is for many files written together,
// where an fsync each would dominate.
func SyncFS(dir string, files []string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
