//go:build !linux

package store

import "os"

// syncFS makes blobs durable one by one where syncfs(2) is missing.
func (b *fileBlobs) syncFS(refs []BlobRef) error {
	for _, ref := range refs {
		if err := b.sync(ref); err != nil {
			return err
		}
	}
	return nil
}

// SyncFS makes files written in dir durable, with their directory entries:
// on Linux with one syncfs(2) of dir's file system, elsewhere by an fsync
// of each of files and of dir.
func SyncFS(dir string, files []string) error {
	for _, p := range append(files, dir) {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
