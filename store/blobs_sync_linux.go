package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS makes everything written to the blobs' file system durable with
// one syncfs(2): the files and the directory entries of a whole group of
// blobs at once, instead of two fsyncs per blob.
func (b *Blobs) syncFS(refs []BlobRef) error {
	d, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
