package imapout

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// mbox imports an mbox file into mailbox.
func (x *importer) mbox(ctx context.Context, path, mailbox string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := newMboxReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for n := 1; r.next != ""; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		read := func(w io.Writer) ([]string, time.Time, error) {
			hf := &mboxHeader{w: w}
			from, err := r.message(hf)
			if err == nil {
				err = hf.Close()
			}
			return hf.flags, mboxDate(from), err
		}
		if err := x.add(ctx, mailbox, fmt.Sprintf("mbox %d", n), fmt.Sprintf("%s message %d", path, n), read); err != nil {
			return err
		}
	}
	return nil
}

// mboxReader splits an mbox file into messages. A line starting "From "
// starts a message (mboxo and mboxrd writers quote such lines in bodies);
// a line of one or more ">" then "From " loses one ">" (mboxrd; an mboxo
// file has only single ones, so it reads the same); the empty line a
// writer puts after each message is dropped.
type mboxReader struct {
	br   *bufio.Reader
	next string // the From line of the next message; "" at the end
}

func newMboxReader(r io.Reader) (*mboxReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := readFromLine(br)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if !strings.HasPrefix(line, "From ") {
		return nil, errors.New(`not an mbox file: it does not start with a "From " line`)
	}
	return &mboxReader{br: br, next: line}, nil
}

// readFromLine reads a "From " line, keeping at most 1000 bytes of it.
func readFromLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line) < 1000 {
			line = append(line, chunk[:min(len(chunk), 1000-len(line))]...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return strings.TrimRight(string(line), "\r\n"), err
		}
	}
}

var (
	fromPrefix   = []byte("From ")
	quotedPrefix = []byte(">")
)

// message writes the next message into w and returns its From line.
func (r *mboxReader) message(w io.Writer) (string, error) {
	from := r.next
	r.next = ""
	var held []byte // an empty line, written only if the message goes on
	atStart := true
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(chunk) > 0 && atStart {
			switch {
			case bytes.HasPrefix(chunk, fromPrefix):
				rest, rerr := r.restOfLine(chunk, err)
				r.next = string(rest)
				return from, rerr
			case string(chunk) == "\n" || string(chunk) == "\r\n":
				if held != nil {
					if _, werr := w.Write(held); werr != nil {
						return from, werr
					}
				}
				held = append(held[:0], chunk...)
				if err == nil {
					continue
				}
				chunk = nil
			default:
				if held != nil {
					if _, werr := w.Write(held); werr != nil {
						return from, werr
					}
					held = nil
				}
				if isQuotedFrom(chunk) {
					chunk = chunk[1:]
				}
			}
		}
		if _, werr := w.Write(chunk); werr != nil {
			return from, werr
		}
		atStart = len(chunk) > 0 && chunk[len(chunk)-1] == '\n' || len(chunk) == 0 && atStart
		switch {
		case errors.Is(err, io.EOF):
			return from, nil
		case err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return from, err
		}
	}
}

// restOfLine completes a From line whose first chunk was read.
func (r *mboxReader) restOfLine(chunk []byte, err error) (string, error) {
	line := strings.TrimRight(string(chunk), "\r\n")
	if errors.Is(err, bufio.ErrBufferFull) {
		rest, err := readFromLine(r.br)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line += rest
	}
	return line, nil
}

// isQuotedFrom reports whether line is ">…>From ".
func isQuotedFrom(line []byte) bool {
	rest := bytes.TrimLeft(line, ">")
	return len(rest) < len(line) && bytes.HasPrefix(rest, fromPrefix)
}

// mboxDate reads the date of a "From sender date" line (asctime, maybe
// with a zone), in UTC when it names none; zero when unreadable.
func mboxDate(line string) time.Time {
	fields := strings.Fields(line)
	layouts := []string{"Mon Jan _2 15:04:05 2006", "Mon Jan _2 15:04:05 MST 2006", "Mon Jan _2 15:04:05 -0700 2006",
		"Mon Jan _2 15:04:05 2006 -0700", "Mon Jan _2 15:04 2006"}
	for n := 5; n <= 6 && n < len(fields); n++ {
		s := strings.Join(fields[len(fields)-n:], " ")
		for _, l := range layouts {
			if t, err := time.Parse(l, s); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// mboxFlagFields are the fields mail readers keep flags in inside mbox
// files; they are read and removed.
var mboxFlagFields = map[string]bool{
	"status": true, "x-status": true, "x-keywords": true,
	"x-mozilla-status": true, "x-mozilla-status2": true, "x-mozilla-keys": true,
}

// maxMboxHeader bounds the header held to find flag fields; a longer one
// is passed on unread.
const maxMboxHeader = 1 << 20

// mboxHeader is a writer that holds a message's header until it ends,
// takes the flag fields out of it (into flags) and passes everything else
// on to w.
type mboxHeader struct {
	w     io.Writer
	buf   []byte
	done  bool
	flags []string
}

func (h *mboxHeader) Write(p []byte) (int, error) {
	if h.done {
		return h.w.Write(p)
	}
	h.buf = append(h.buf, p...)
	end := headerEnd(h.buf)
	if end < 0 && len(h.buf) <= maxMboxHeader {
		return len(p), nil
	}
	if end < 0 {
		end = 0 // not a header we can read: pass it on as is
	}
	return len(p), h.finish(end)
}

// Close passes on a message that ended inside its header.
func (h *mboxHeader) Close() error {
	if h.done {
		return nil
	}
	return h.finish(len(h.buf))
}

func (h *mboxHeader) finish(end int) error {
	h.done = true
	kept, flags := stripFlagFields(h.buf[:end])
	h.flags = flags
	if _, err := h.w.Write(kept); err != nil {
		return err
	}
	_, err := h.w.Write(h.buf[end:])
	h.buf = nil
	return err
}

// headerEnd is the length of the header in b up to and including its
// last line's end (the empty line is not part of it), or -1.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\n")) || bytes.HasPrefix(b, []byte("\r\n")) {
		return 0
	}
	i := bytes.Index(b, []byte("\n\n"))
	j := bytes.Index(b, []byte("\n\r\n"))
	switch {
	case i < 0 && j < 0:
		return -1
	case i < 0 || j >= 0 && j < i:
		return j + 1
	}
	return i + 1
}

// stripFlagFields removes the mbox flag fields from a header and returns
// the flags they held.
func stripFlagFields(header []byte) ([]byte, []string) {
	var out []byte
	var flags []string
	lines := bytes.SplitAfter(header, []byte("\n"))
	for i := 0; i < len(lines); {
		j := i + 1
		for j < len(lines) && len(lines[j]) > 0 && (lines[j][0] == ' ' || lines[j][0] == '\t') {
			j++
		}
		field := bytes.Join(lines[i:j], nil)
		name, value, ok := bytes.Cut(field, []byte(":"))
		if ok && mboxFlagFields[strings.ToLower(strings.TrimSpace(string(name)))] {
			flags = append(flags, mboxFieldFlags(strings.ToLower(strings.TrimSpace(string(name))), strings.TrimSpace(string(value)))...)
		} else {
			out = append(out, field...)
		}
		i = j
	}
	return out, flags
}

// mboxFieldFlags reads one flag field: Status: R (read) and O (old, no
// flag); X-Status: A (answered), F (flagged), T (draft), D (deleted), as
// mutt and Dovecot write them; X-Keywords: and X-Mozilla-Keys: keywords;
// X-Mozilla-Status: Thunderbird's hex bits (read 0x1, replied 0x2,
// marked 0x4, expunged 0x8, forwarded 0x1000).
func mboxFieldFlags(name, value string) []string {
	var out []string
	letters := func(m map[rune]string) {
		for _, c := range value {
			if f, ok := m[c]; ok {
				out = append(out, f)
			}
		}
	}
	switch name {
	case "status":
		letters(map[rune]string{'R': string(imap.FlagSeen)})
	case "x-status":
		letters(map[rune]string{'A': string(imap.FlagAnswered), 'F': string(imap.FlagFlagged), 'T': string(imap.FlagDraft), 'D': string(imap.FlagDeleted)})
	case "x-keywords", "x-mozilla-keys":
		for _, k := range strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\r' || r == '\n' }) {
			if validKeyword(k) {
				out = append(out, k)
			}
		}
	case "x-mozilla-status":
		bits, err := strconv.ParseUint(value, 16, 32)
		if err != nil {
			break
		}
		for _, b := range []struct {
			bit  uint64
			flag string
		}{{0x1, string(imap.FlagSeen)}, {0x2, string(imap.FlagAnswered)}, {0x4, string(imap.FlagFlagged)}, {0x8, string(imap.FlagDeleted)}, {0x1000, "$Forwarded"}} {
			if bits&b.bit != 0 {
				out = append(out, b.flag)
			}
		}
	}
	return out
}

// validKeyword reports whether k is an IMAP flag keyword (an atom).
func validKeyword(k string) bool {
	if k == "" || len(k) > 100 || strings.HasPrefix(k, `\`) {
		return false
	}
	for _, c := range []byte(k) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
