package imapout

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"tollbridge/store"
)

// ImportOptions tunes an import.
type ImportOptions struct {
	// Mailbox receives an mbox file, or the messages of a Maildir given
	// itself (its Maildir++ folders keep their names); "" means INBOX.
	Mailbox string
	// Group is how many messages are stored per transaction (one fsync
	// of the database each); 0 means 100.
	Group int
	// Progress, when set, is called after each group is stored.
	Progress func(ImportStats)
}

// ImportStats says what an import did.
type ImportStats struct {
	Messages int   // stored by this run
	Skipped  int   // stored by an earlier run of the same import
	Bytes    int64 // of the messages stored
	// Failed names the source messages that were refused, with why. None
	// of them is stored, even in part.
	Failed []string
}

// Import stores the messages of path, a Maildir or an mbox file, as the
// user's own (IMAP APPEND: sealed to the user's key at once by
// Options.Seal, shown back byte for byte with no trace fields in front),
// creating mailboxes as needed. path may be:
//   - an mbox file (mboxrd or mboxo: "From " lines separate messages,
//     ">From " lines lose one ">"), filed into opts.Mailbox;
//   - a Maildir (it has cur/), filed into opts.Mailbox, with its Maildir++
//     folders (".Sent", ".Archive.2026") filed by name;
//   - a directory of Maildirs, as Export writes them (see maildirName).
//
// Flags come from Maildir info suffixes (with the dovecot-keywords file)
// or mbox Status:, X-Status:, X-Keywords: and X-Mozilla-Status/-Keys
// fields, which are removed from the stored message as Dovecot hides them
// (they are the mailbox file's bookkeeping, not the message's). INTERNALDATE
// is a Maildir file's mtime or the date of an mbox "From " line (UTC).
// Lines ending in a bare LF get CRLF, as IMAP wants; messages with CRLF
// (an export's) are stored byte for byte.
//
// Messages are stored in groups, each in one transaction: a message is
// stored whole or not at all. With a Options.Seal that defers its fsyncs
// (intake.Sealer.Deferred), a group's blobs are synced together first. Each one is remembered by a mark keyed with
// the user's data key, so running the same import again after an
// interruption skips what was stored.
func (p *Porter) Import(ctx context.Context, path string, opts ImportOptions) (*ImportStats, error) {
	if opts.Group <= 0 {
		opts.Group = 100
	}
	if opts.Mailbox == "" {
		opts.Mailbox = "INBOX"
	}
	if !validName(opts.Mailbox) {
		return nil, fmt.Errorf("mailbox %q: invalid name", opts.Mailbox)
	}
	if p.a.srv.cfg.Seal == nil {
		return nil, errors.New("import: no sealer configured")
	}
	mk := hmac.New(sha256.New, p.a.key.DataKey[:])
	mk.Write([]byte("tollbridge import marks v1"))
	x := &importer{p: p, opts: opts, st: &ImportStats{}, markKey: mk.Sum(nil), boxes: map[string]*store.Mailbox{}}
	err := x.source(ctx, path)
	if err == nil {
		err = x.flush(ctx)
	}
	return x.st, err
}

// importer is one import under way.
type importer struct {
	p       *Porter
	opts    ImportOptions
	st      *ImportStats
	markKey []byte
	boxes   map[string]*store.Mailbox
	pending []store.ImportItem
	bytes   int64 // of pending
}

// source reads path, whatever it is.
func (x *importer) source(ctx context.Context, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return x.mbox(ctx, path, x.opts.Mailbox)
	}
	if isMaildir(path) {
		if err := x.maildir(ctx, path, x.opts.Mailbox); err != nil {
			return err
		}
		return x.maildirs(ctx, path, true)
	}
	return x.maildirs(ctx, path, false)
}

// maildirs imports the Maildirs in dir: Maildir++ folders (".Name") when
// plusPlus, else the directories of an export.
func (x *importer) maildirs(ctx context.Context, dir string, plusPlus bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	found := plusPlus
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") != plusPlus || !isMaildir(filepath.Join(dir, name)) {
			continue
		}
		box, err := mailboxFromMaildir(strings.TrimPrefix(name, "."))
		if err != nil {
			return err
		}
		if err := x.maildir(ctx, filepath.Join(dir, name), box); err != nil {
			return err
		}
		found = true
	}
	if !found {
		return fmt.Errorf("%s is neither an mbox file nor a Maildir (no cur/ in it or in its directories)", dir)
	}
	return nil
}

// maildir imports the messages of one Maildir into mailbox.
func (x *importer) maildir(ctx context.Context, dir, mailbox string) error {
	keywords, err := readDovecotKeywords(dir)
	if err != nil {
		return fmt.Errorf("maildir %s: %w", dir, err)
	}
	files, err := listMaildir(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		var flags []string
		if !f.new {
			flags = parseMaildirInfo(filepath.Base(f.path), keywords)
		}
		if err := x.maildirFile(ctx, f, mailbox, flags); err != nil {
			return err
		}
	}
	return nil
}

func (x *importer) maildirFile(ctx context.Context, f maildirFile, mailbox string, flags []string) error {
	file, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	return x.add(ctx, mailbox, "maildir "+f.base, f.path, func(w io.Writer) ([]string, time.Time, error) {
		_, err := io.Copy(w, file)
		return flags, info.ModTime(), err
	})
}

// add imports one message: read puts its bytes into the spool and says
// its flags and INTERNALDATE (zero: now); what is wrong with the message
// itself is recorded in Failed under name, and the import goes on.
func (x *importer) add(ctx context.Context, mailbox, identity, name string, read func(io.Writer) ([]string, time.Time, error)) error {
	a := x.p.a
	sp := store.NewSpool(a.srv.cfg.SpoolDir, memSpool)
	defer sp.Close()
	sum := sha256.New()
	// Readers write line by line: buffer, or each line is a system call.
	bw := bufio.NewWriterSize(io.MultiWriter(sp, sum), 64<<10)
	flags, received, err := read(&crlfWriter{w: bw})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	mark := x.mark(mailbox, identity, sum)
	done, err := a.srv.st.ImportMarked(ctx, a.user.ID, mark)
	if err != nil {
		return err
	}
	if done {
		x.st.Skipped++
		return nil
	}
	item, err := x.seal(ctx, mailbox, sp, flags, received)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		x.st.Failed = append(x.st.Failed, fmt.Sprintf("%s: %v", name, err))
		return nil
	}
	item.Mark = mark
	x.pending = append(x.pending, *item)
	x.bytes += sp.Size()
	if len(x.pending) >= x.opts.Group {
		return x.flush(ctx)
	}
	return nil
}

// mark identifies a source message for a resumed import: where it goes,
// its place in its source and its bytes, keyed so the admin cannot test
// for a known message.
func (x *importer) mark(mailbox, identity string, sum hash.Hash) []byte {
	h := hmac.New(sha256.New, x.markKey)
	fmt.Fprintf(h, "%s\x00%s\x00%s", mailbox, identity, hex.EncodeToString(sum.Sum(nil)))
	return h.Sum(nil)
}

// seal seals one message as APPEND does and prepares its row.
func (x *importer) seal(ctx context.Context, mailbox string, sp *store.Spool, flags []string, received time.Time) (*store.ImportItem, error) {
	a := x.p.a
	if sp.Size() > a.srv.cfg.AppendLimit {
		return nil, fmt.Errorf("%d bytes, more than the %d this server accepts (smtp.max_message_bytes)", sp.Size(), a.srv.cfg.AppendLimit)
	}
	if sp.Size() == 0 {
		return nil, errors.New("empty message")
	}
	box, err := x.mailbox(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	res, err := scanMessage(sp.Section(0, sp.Size()))
	if err != nil {
		return nil, err
	}
	md := newMeta(res)
	md.Filter = renderedFilter(md.Root, sp)
	nm, err := a.srv.cfg.Seal(ctx, a.user, sp, sp.Size())
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	nm.UserID, nm.Source, nm.Auth, nm.Mailbox = a.user.ID, store.SourceAppend, "", ""
	fl := make([]imap.Flag, len(flags))
	for i, f := range flags {
		fl[i] = imap.Flag(f)
	}
	nm.Flags = canonicalFlags(fl)
	nm.Received = received
	if nm.Received.IsZero() {
		nm.Received = a.srv.cfg.Now()
	}
	if err := a.checkSealed(ctx, nm, sp.Size()); err != nil {
		return nil, err
	}
	return &store.ImportItem{Message: nm, MailboxID: box.ID, Size: md.Size,
		Meta: func(id int64) ([]byte, error) { return a.metas.seal(md, id) }}, nil
}

// mailbox finds or creates a mailbox by name.
func (x *importer) mailbox(ctx context.Context, name string) (*store.Mailbox, error) {
	name = store.CanonicalMailboxName(name)
	if b := x.boxes[name]; b != nil {
		return b, nil
	}
	st, uid := x.p.a.srv.st, x.p.a.user.ID
	b, err := st.MailboxByName(ctx, uid, name)
	if errors.Is(err, store.ErrNotFound) {
		b, err = st.CreateMailbox(ctx, uid, name, "")
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox %s: %w", name, err)
	}
	x.boxes[name] = b
	return b, nil
}

// flush stores the pending messages in one transaction.
func (x *importer) flush(ctx context.Context) error {
	if len(x.pending) == 0 {
		return nil
	}
	// Blobs sealed with a deferred Sealer are made durable here, for the
	// whole group at once, before the rows that reference them.
	var refs []store.BlobRef
	for _, it := range x.pending {
		for _, ref := range it.Message.Blobs {
			refs = append(refs, ref)
		}
	}
	if err := x.p.a.srv.st.Blobs().SyncAll(refs); err != nil {
		return err
	}
	n, err := x.p.a.srv.st.ImportMessages(ctx, x.p.a.user.ID, x.pending)
	if err != nil {
		return err
	}
	x.st.Messages += n
	x.st.Skipped += len(x.pending) - n
	x.st.Bytes += x.bytes
	x.pending, x.bytes = x.pending[:0], 0
	if x.opts.Progress != nil {
		x.opts.Progress(*x.st)
	}
	return nil
}

// crlfWriter writes a bare LF as CRLF (IMAP messages use CRLF; Maildir and
// mbox files often have LF only). CRLF passes unchanged.
type crlfWriter struct {
	w  io.Writer
	cr bool // the last byte written was CR
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	start := 0
	for i, b := range p {
		if b != '\n' || i > 0 && p[i-1] == '\r' || i == 0 && c.cr {
			continue
		}
		if _, err := c.w.Write(p[start:i]); err != nil {
			return 0, err
		}
		if _, err := c.w.Write([]byte("\r\n")); err != nil {
			return 0, err
		}
		start = i + 1
	}
	if _, err := c.w.Write(p[start:]); err != nil {
		return 0, err
	}
	if len(p) > 0 {
		c.cr = p[len(p)-1] == '\r'
	}
	return len(p), nil
}
