package imapout

import (
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/store"
)

const delim = '/'

var (
	errNoMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	errExists    = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	errBadName   = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name"}
)

// mailboxError maps store errors to IMAP answers.
func mailboxError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNoMailbox
	case errors.Is(err, store.ErrExists):
		return errExists
	case errors.Is(err, store.ErrMailboxHasChildren):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren, Text: "Mailbox has children, delete them first"}
	case errors.Is(err, store.ErrMailboxInbox):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Not possible with INBOX"}
	}
	return err
}

// validName checks a mailbox name: UTF-8, no control characters or
// wildcards, no empty hierarchy level.
func validName(name string) bool {
	if name == "" || len(name) > 512 || !utf8.ValidString(name) || strings.ContainsAny(name, "*%\x7f") {
		return false
	}
	for _, r := range name {
		if r < 0x20 {
			return false
		}
	}
	for _, level := range strings.Split(name, string(delim)) {
		if level == "" {
			return false
		}
	}
	return true
}

// specialUses are the RFC 6154 attributes a client may give a mailbox
// (\All and \Flagged would need virtual mailboxes).
var specialUses = map[imap.MailboxAttr]bool{
	imap.MailboxAttrArchive: true, imap.MailboxAttrDrafts: true, imap.MailboxAttrJunk: true,
	imap.MailboxAttrSent: true, imap.MailboxAttrTrash: true,
}

// Create implements imapserver.Session.
func (s *session) Create(name string, options *imap.CreateOptions) error {
	name = strings.TrimSuffix(name, string(delim)) // RFC 3501: a trailing delimiter only declares intent
	if !validName(name) {
		return errBadName
	}
	var uses []string
	for _, u := range options.SpecialUse {
		if !specialUses[u] {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: codeUseAttr, Text: "Unsupported special-use attribute " + string(u)}
		}
		uses = append(uses, string(u))
	}
	_, err := s.srv.st.CreateMailbox(s.ctx, s.user.ID, name, strings.Join(uses, " "))
	return mailboxError(err)
}

// Delete implements imapserver.Session.
func (s *session) Delete(name string) error {
	return mailboxError(s.srv.st.DeleteMailbox(s.ctx, s.user.ID, name))
}

// Rename implements imapserver.Session.
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	newName = strings.TrimSuffix(newName, string(delim))
	if !validName(newName) {
		return errBadName
	}
	return mailboxError(s.srv.st.RenameMailbox(s.ctx, s.user.ID, oldName, newName))
}

// Subscribe implements imapserver.Session.
func (s *session) Subscribe(name string) error {
	return mailboxError(s.srv.st.SetSubscribed(s.ctx, s.user.ID, name, true))
}

// Unsubscribe implements imapserver.Session.
func (s *session) Unsubscribe(name string) error {
	err := s.srv.st.SetSubscribed(s.ctx, s.user.ID, name, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil // unsubscribing a deleted mailbox is fine
	}
	return mailboxError(err)
}

// Status implements imapserver.Session.
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	box, err := s.srv.st.MailboxByName(s.ctx, s.user.ID, name)
	if err != nil {
		return nil, mailboxError(err)
	}
	return s.status(box, options)
}

func (s *session) status(box *store.Mailbox, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: box.Name, UIDNext: imap.UID(box.UIDNext), UIDValidity: box.UIDValidity}
	if options.NumMessages || options.NumUnseen || options.NumDeleted || options.Size || options.NumRecent {
		c, err := s.srv.st.MailboxCounts(s.ctx, box.ID)
		if err != nil {
			return nil, err
		}
		data.NumMessages, data.NumUnseen, data.NumDeleted = &c.Messages, &c.Unseen, &c.Deleted
		data.Size, data.NumRecent = &c.Size, &c.Recent
	}
	limit := s.AppendLimit()
	data.AppendLimit = &limit
	var zero int64
	data.DeletedStorage = &zero
	data.HighestModSeq = uint64(box.ModSeq) // RFC 7162 §3.1.6
	return data, nil
}

// List implements imapserver.Session, with the LIST-EXTENDED selection and
// return options, CHILDREN and SPECIAL-USE attributes and LIST-STATUS.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	boxes, err := s.srv.st.Mailboxes(s.ctx, s.user.ID)
	if err != nil {
		return err
	}
	subs, err := s.srv.st.Subscriptions(s.ctx, s.user.ID)
	if err != nil {
		return err
	}
	entries := listEntries(boxes, subs)
	for _, e := range entries {
		if !matchAny(e.name, ref, patterns) {
			continue
		}
		data, ok := e.listData(options)
		if !ok {
			continue
		}
		if options.ReturnStatus != nil && e.box != nil {
			if data.Status, err = s.status(e.box, options.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// listEntry is one name of the hierarchy: a mailbox, a level that only
// exists because mailboxes below it do, or a subscribed name alone.
type listEntry struct {
	name            string
	box             *store.Mailbox
	subscribed      bool
	children        bool // mailboxes exist below it
	subscribedChild bool // names below it are subscribed
}

// exists reports whether a plain LIST shows the entry.
func (e *listEntry) exists() bool { return e.box != nil || e.children }

func listEntries(boxes []*store.Mailbox, subs []string) []*listEntry {
	byName := map[string]*listEntry{}
	entry := func(name string) *listEntry {
		e := byName[name]
		if e == nil {
			e = &listEntry{name: name}
			byName[name] = e
		}
		return e
	}
	for _, b := range boxes {
		entry(b.Name).box = b
		for _, p := range parents(b.Name) {
			entry(p).children = true
		}
	}
	for _, name := range subs {
		entry(name).subscribed = true
		for _, p := range parents(name) {
			entry(p).subscribedChild = true
		}
	}
	out := make([]*listEntry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		// INBOX first, then by name.
		if (out[i].name == "INBOX") != (out[j].name == "INBOX") {
			return out[i].name == "INBOX"
		}
		return out[i].name < out[j].name
	})
	return out
}

// parents returns the names above name: "a/b/c" gives "a/b", "a".
func parents(name string) []string {
	var out []string
	for i := strings.LastIndexByte(name, delim); i > 0; i = strings.LastIndexByte(name, delim) {
		name = name[:i]
		out = append(out, name)
	}
	return out
}

// listData is the LIST answer for an entry, and whether the selection
// options keep it. With RECURSIVEMATCH, CHILDINFO marks an entry that is
// listed only for its subscribed children (RFC 5258 §3.5), which LSUB
// shows as \Noselect.
func (e *listEntry) listData(options *imap.ListOptions) (*imap.ListData, bool) {
	childInfo := options.SelectRecursiveMatch && e.subscribedChild && !e.subscribed
	switch {
	case options.SelectSubscribed && !e.subscribed && !childInfo:
		return nil, false
	case !options.SelectSubscribed && !e.exists():
		return nil, false
	case options.SelectSpecialUse && (e.box == nil || e.box.SpecialUse == ""):
		return nil, false
	}
	data := &imap.ListData{Delim: delim, Mailbox: e.name}
	if e.box == nil {
		data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent)
	}
	if e.children {
		data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
	} else if e.exists() {
		data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
	}
	if e.subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
		data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
	}
	if e.box != nil && e.box.SpecialUse != "" {
		for _, u := range strings.Fields(e.box.SpecialUse) {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(u))
		}
	}
	if childInfo {
		data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
	}
	return data, true
}

// matchAny matches a name against LIST patterns, INBOX case-insensitively.
func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
		if strings.HasPrefix(name, "INBOX") && imapserver.MatchList(name, delim, "", store.CanonicalMailboxName(ref+p)) {
			return true
		}
	}
	return false
}
