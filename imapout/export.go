package imapout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"tollbridge/keyring"
	"tollbridge/store"
)

// Porter moves one user's mail out of the store and into it without an
// IMAP session, for `bridge user export` and `bridge user import`: the
// store is opened directly and the user's key unlocked by the caller. It
// shows and stores messages exactly as IMAP FETCH and APPEND do.
type Porter struct {
	a *account
}

// Porter returns a Porter for u with its unlocked key. The Server need
// not be serving.
func (s *Server) Porter(u *store.User, key *keyring.Unlocked) (*Porter, error) {
	mc, err := newMetaCipher(key.DataKey)
	if err != nil {
		return nil, err
	}
	return &Porter{a: &account{srv: s, user: u, key: key, metas: mc, keys: newKeyCache(),
		catalogs: newLRU[string, openedCatalog](catalogCacheBytes), deferred: map[int64]time.Time{}, nudge: make(chan struct{}, 1)}}, nil
}

// ExportStats says what an export wrote.
type ExportStats struct {
	Mailboxes int
	Messages  int
	Bytes     int64
	// Unfiled messages wait for a login to be filed (their signature
	// checked) and are in no mailbox yet: they are not exported.
	Unfiled int
	// Unreadable names messages ("mailbox UID n") whose stored content
	// failed its integrity check; they are left out, as FETCH leaves them.
	Unreadable []string
	// Dropped names keywords beyond the 26 a Maildir can carry per mailbox.
	Dropped []string
}

// Export writes every mailbox of the user as a Maildir under dir (see
// maildirName), each message as the IMAP client sees BODY[]: for mail
// that arrived, the trace fields and this bridge's Authentication-Results
// in front, as FETCH shows them, so what an importer stores is what the
// user saw. Each file is written in tmp/, given the message's INTERNALDATE
// as mtime (Dovecot reads the received date from it) and renamed into
// cur/ with a ":2,FLAGS" info suffix once it is on disk (each batch of
// files is synced at once); keywords get the letters a-z of a
// dovecot-keywords file. Messages are rendered one at a
// time through a spool (memory, or an encrypted temporary file beyond
// 4 MiB), so memory does not grow with message or mailbox size. dir must
// not exist or be empty.
func (p *Porter) Export(ctx context.Context, dir string) (*ExportStats, error) {
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	boxes, err := p.a.srv.st.Mailboxes(ctx, p.a.user.ID)
	if err != nil {
		return nil, err
	}
	st := &ExportStats{}
	if st.Unfiled, err = p.a.srv.st.UnfiledCount(ctx, p.a.user.ID); err != nil {
		return nil, err
	}
	x := &exporter{p: p, st: st, start: p.a.srv.cfg.Now(), pid: os.Getpid(), host: maildirHost(p.a.srv.cfg.Hostname)}
	for _, box := range boxes {
		if err := x.mailbox(ctx, box, filepath.Join(dir, maildirName(box.Name))); err != nil {
			return st, fmt.Errorf("export %s: %w", box.Name, err)
		}
		st.Mailboxes++
	}
	return st, nil
}

// emptyDir makes dir, or checks that it is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty; export into a new directory", dir)
	}
	return nil
}

// exporter is one export under way.
type exporter struct {
	p     *Porter
	st    *ExportStats
	start time.Time
	pid   int
	host  string
	seq   int
}

// mailbox writes one mailbox's Maildir.
func (x *exporter) mailbox(ctx context.Context, box *store.Mailbox, dir string) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	names, letters := maildirKeywords(box.Keywords)
	if err := writeDovecotKeywords(dir, names); err != nil {
		return err
	}
	dropped := map[string]bool{}
	uids, err := x.p.a.srv.st.MailboxUIDs(ctx, box.ID, 0, 0)
	if err != nil {
		return err
	}
	for len(uids) > 0 {
		n := min(len(uids), batch)
		if err := x.batch(ctx, box, dir, uids[:n], letters, dropped); err != nil {
			return err
		}
		uids = uids[n:]
	}
	for k := range dropped {
		x.st.Dropped = append(x.st.Dropped, box.Name+": "+k)
	}
	sort.Strings(x.st.Dropped)
	return errors.Join(syncDir(filepath.Join(dir, "cur")), syncDir(dir))
}

// batch writes the messages of some UIDs of a mailbox.
func (x *exporter) batch(ctx context.Context, box *store.Mailbox, dir string, uids []uint32, letters map[string]byte, dropped map[string]bool) error {
	st := x.p.a.srv.st
	rows, err := st.MessageRows(ctx, box.ID, uids, store.RowFlags)
	if err != nil {
		return err
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.MessageID
	}
	sealed, err := st.SealedMessages(ctx, ids)
	if err != nil {
		return err
	}
	var written []string // in tmp/, with the name each gets in cur/
	defer func() {
		for i := 0; i < len(written); i += 2 {
			os.Remove(written[i]) // left after an error
		}
	}()
	for _, r := range rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := sealed[r.MessageID]
		if m == nil {
			continue // expunged meanwhile
		}
		info, drop := maildirInfo(r.Flags, letters)
		for _, k := range drop {
			dropped[k] = true
		}
		tmp, final, err := x.message(ctx, dir, m, info)
		if errors.Is(err, errUnreadable) {
			x.p.a.srv.log.Error("export: message cannot be shown", "user", x.p.a.user.Address, "mailbox", box.Name, "uid", r.UID, "err", err)
			x.st.Unreadable = append(x.st.Unreadable, fmt.Sprintf("%s UID %d", box.Name, r.UID))
			continue
		}
		if err != nil {
			return fmt.Errorf("UID %d: %w", r.UID, err)
		}
		written = append(written, tmp, final)
	}
	if err := x.deliver(dir, written); err != nil {
		return err
	}
	written = nil
	return nil
}

// deliver makes a batch of files written in tmp/ durable, all at once,
// then moves them into cur/: a file is in cur/ only once it is whole on
// disk, as the Maildir spec asks.
func (x *exporter) deliver(dir string, written []string) error {
	tmps := make([]string, 0, len(written)/2)
	for i := 0; i < len(written); i += 2 {
		tmps = append(tmps, written[i])
	}
	if err := store.SyncFS(filepath.Join(dir, "tmp"), tmps); err != nil {
		return err
	}
	for i := 0; i < len(written); i += 2 {
		if err := os.Rename(written[i], written[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// message writes one message file into tmp/ with the message's
// INTERNALDATE as mtime, and returns its path and the one it gets in cur/.
func (x *exporter) message(ctx context.Context, dir string, m *store.SealedMessage, info string) (string, string, error) {
	o, err := x.p.a.open(ctx, m)
	if err != nil {
		return "", "", err
	}
	sp, err := x.p.a.render(o, x.p.a.srv.prefix(m, m.Auth))
	if err != nil {
		return "", "", err
	}
	defer sp.Close()
	x.seq++
	base := fmt.Sprintf("%d.M%dP%dQ%d.%s,S=%d", x.start.Unix(), x.start.Nanosecond()/1000, x.pid, x.seq, x.host, sp.Size())
	tmp := filepath.Join(dir, "tmp", base)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", err
	}
	_, err = io.Copy(f, sp.Section(0, sp.Size()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, m.Received, m.Received)
	}
	if err != nil {
		os.Remove(tmp)
		return "", "", err
	}
	x.st.Messages++
	x.st.Bytes += sp.Size()
	return tmp, filepath.Join(dir, "cur", base+info), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
