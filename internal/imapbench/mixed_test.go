package imapbench

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// mixedSessions is issue 13 item 11's load: ten sessions of one user.
const mixedSessions = 10

// reloginEvery is how many commands a relogging session runs between
// LOGOUT and the next LOGIN.
const reloginEvery = 5

// benchMixed runs b.N commands spread over ten sessions of one user at
// once: FETCH, STORE, APPEND, EXPUNGE (each session expunges only what it
// appended), and with relogin, LOGIN and SELECT anew every few commands.
// LOGIN and SELECT count as commands. One b.N is one command, so the
// ratio is one of commands per second.
func benchMixed(relogin bool) func(*testing.B, *server, int) {
	return func(b *testing.B, s *server, n int) {
		var left atomic.Int64
		left.Store(int64(b.N))
		var wg sync.WaitGroup
		errs := make(chan error, mixedSessions)
		for w := range mixedSessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := &mixer{b: b, s: s, n: n, r: rand.New(rand.NewPCG(uint64(w), 11)), left: &left, relogin: relogin}
				if err := m.run(); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
}

// mixer is one session of the mixed load.
type mixer struct {
	b       *testing.B
	s       *server
	n       int
	r       *rand.Rand
	left    *atomic.Int64
	relogin bool
	c       *imapclient.Client
	mine    []imap.UID // appended and not yet expunged
}

// take claims one command of the budget.
func (m *mixer) take() bool { return m.left.Add(-1) >= 0 }

func (m *mixer) run() error {
	defer func() {
		if m.c != nil {
			m.c.Close()
		}
	}()
	for since := 0; ; since++ {
		if m.c == nil || m.relogin && since%reloginEvery == 0 {
			if ok, err := m.login(); !ok || err != nil {
				return err
			}
		}
		if !m.take() {
			return nil
		}
		if err := m.step(); err != nil {
			return fmt.Errorf("%s: %w", m.s.name, err)
		}
	}
}

// login logs out (when logged in) and in again and selects INBOX: two
// commands of the budget.
func (m *mixer) login() (bool, error) {
	if m.c != nil {
		m.c.Logout().Wait()
		m.c.Close()
		m.c = nil
	}
	if !m.take() || !m.take() {
		return false, nil
	}
	c, err := m.s.connect()
	if err != nil {
		return false, err
	}
	m.c = c
	_, err = m.c.Select("INBOX", nil).Wait()
	return true, err
}

// step runs one command: 35% FETCH of 20 messages' flags and envelopes,
// 20% one message's body, 25% STORE, 12% APPEND, 8% EXPUNGE.
func (m *mixer) step() error {
	uid := imap.UID(1 + m.r.IntN(m.n))
	switch p := m.r.IntN(100); {
	case p < 35:
		set := imap.UIDSet{{Start: uid, Stop: uid + 19}}
		_, err := m.c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true}).Collect()
		return err
	case p < 55:
		_, err := m.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		return err
	case p < 80:
		op := imap.StoreFlagsAdd
		if m.r.IntN(2) == 0 {
			op = imap.StoreFlagsDel
		}
		return m.c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	case p < 92 || len(m.mine) == 0:
		got, err := appendOne(m.c, "INBOX", message(m.r.IntN(16))) // no big attachments
		m.mine = append(m.mine, got)
		return err
	default:
		return m.expunge()
	}
}

// expunge removes the session's own oldest APPENDed message: UID STORE
// \Deleted and UID EXPUNGE (UIDPLUS), counted as one command.
func (m *mixer) expunge() error {
	uid := m.mine[0]
	m.mine = m.mine[1:]
	set := imap.UIDSetNum(uid)
	if err := m.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return err
	}
	return m.c.UIDExpunge(set).Close()
}
