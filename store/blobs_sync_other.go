//go:build !linux

package store

// syncFS makes blobs durable one by one where syncfs(2) is missing.
func (b *Blobs) syncFS(refs []BlobRef) error {
	for _, ref := range refs {
		if err := b.Sync(ref); err != nil {
			return err
		}
	}
	return nil
}
