package imapserver

// tollbridge: this file is tollbridge's (SORT, ESORT, SORT=DISPLAY); see
// PATCHES.md.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SortKey is a SORT key (RFC 5256 §3, RFC 5957 §3).
type SortKey string

// The sort keys of RFC 5256 and of SORT=DISPLAY (RFC 5957).
const (
	SortKeyArrival     SortKey = "ARRIVAL"
	SortKeyCc          SortKey = "CC"
	SortKeyDate        SortKey = "DATE"
	SortKeyFrom        SortKey = "FROM"
	SortKeySize        SortKey = "SIZE"
	SortKeySubject     SortKey = "SUBJECT"
	SortKeyTo          SortKey = "TO"
	SortKeyDisplayFrom SortKey = "DISPLAYFROM"
	SortKeyDisplayTo   SortKey = "DISPLAYTO"
)

// SortCriterion is one key of a SORT command, maybe reversed.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// SessionSort is an IMAP session which supports SORT and UID SORT
// (RFC 5256) with every key of RFC 5256 and RFC 5957 (SORT=DISPLAY).
// ESORT (RFC 5267) is served from Sort's answer.
type SessionSort interface {
	Session

	// Sort returns the numbers (of kind) of the messages matching
	// criteria, ordered by keys, ties in sequence order. options holds
	// the RETURN options; Sort honours only ReturnSave (RFC 5182).
	Sort(kind NumKind, keys []SortCriterion, criteria *imap.SearchCriteria, options *imap.SearchOptions) ([]uint32, error)
}

func (c *Conn) handleSort(tag string, dec *imapwire.Decoder, numKind NumKind) error {
	session, ok := c.session.(SessionSort)
	if !ok {
		return newClientBugError("SORT is not supported")
	}
	var (
		options  imap.SearchOptions
		extended bool
		atom     string
	)
	if !dec.ExpectSP() {
		return dec.Err()
	}
	if dec.Atom(&atom) {
		if !strings.EqualFold(atom, "RETURN") {
			return newClientBugError("SORT: expected RETURN or sort criteria")
		}
		if err := readSearchReturnOpts(dec, &options); err != nil {
			return fmt.Errorf("in sort-return-opts: %w", err)
		}
		if !dec.ExpectSP() {
			return dec.Err()
		}
		extended = true
	}
	keys, err := readSortCriteria(dec)
	if err != nil {
		return err
	}
	criteria, err := readCharsetAndSearch(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	saveOnly := options.ReturnSave
	if !options.ReturnMin && !options.ReturnMax && !options.ReturnAll && !options.ReturnCount {
		options.ReturnAll = true
	} else {
		saveOnly = false
	}
	nums, err := session.Sort(numKind, keys, criteria, &options)
	if err != nil {
		return err
	}
	switch {
	case saveOnly:
		return nil // RETURN (SAVE) alone answers nothing (RFC 5182 §2.1)
	case extended:
		return c.writeESort(tag, nums, &options, numKind)
	}
	return c.writeNums("SORT", nums)
}

// readSortCriteria reads "(" sort-criterion *(SP sort-criterion) ")".
func readSortCriteria(dec *imapwire.Decoder) ([]SortCriterion, error) {
	var keys []SortCriterion
	err := dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		var k SortCriterion
		if strings.EqualFold(name, "REVERSE") {
			k.Reverse = true
			if !dec.ExpectSP() || !dec.ExpectAtom(&name) {
				return dec.Err()
			}
		}
		k.Key = SortKey(strings.ToUpper(name))
		switch k.Key {
		case SortKeyArrival, SortKeyCc, SortKeyDate, SortKeyFrom, SortKeySize,
			SortKeySubject, SortKeyTo, SortKeyDisplayFrom, SortKeyDisplayTo:
		default:
			return newClientBugError("unknown sort key " + name)
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("in sort-criteria: %w", err)
	}
	if len(keys) == 0 {
		return nil, newClientBugError("SORT needs at least one sort key")
	}
	return keys, nil
}

// readCharsetAndSearch reads SP charset 1*(SP search-key) CRLF, the tail
// of SORT and THREAD (RFC 5256 §5).
func readCharsetAndSearch(dec *imapwire.Decoder) (*imap.SearchCriteria, error) {
	var charset string
	if !dec.ExpectSP() || !dec.ExpectAString(&charset) || !dec.ExpectSP() {
		return nil, dec.Err()
	}
	var criteria imap.SearchCriteria
	for {
		if err := readSearchKey(&criteria, dec); err != nil {
			return nil, fmt.Errorf("in search-key: %w", err)
		}
		if !dec.SP() {
			break
		}
	}
	if !dec.ExpectCRLF() {
		return nil, dec.Err()
	}
	switch strings.ToUpper(charset) {
	case "US-ASCII", "UTF-8":
		return &criteria, nil
	}
	return nil, &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeBadCharset,
		Text: "Only US-ASCII and UTF-8 are supported charsets",
	}
}

// writeNums writes "* name n n n".
func (c *Conn) writeNums(name string, nums []uint32) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom(name)
	for _, n := range nums {
		enc.SP().Number(n)
	}
	return enc.CRLF()
}

// writeESort writes the ESEARCH answer of a SORT with RETURN (RFC 5267
// §3.2): MIN and MAX are the first and last message in sort order, and
// ALL lists the messages in sort order.
func (c *Conn) writeESort(tag string, nums []uint32, options *imap.SearchOptions, numKind NumKind) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ESEARCH")
	enc.SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	if numKind == NumKindUID {
		enc.SP().Atom("UID")
	}
	if len(nums) > 0 {
		if options.ReturnMin {
			enc.SP().Atom("MIN").SP().Number(nums[0])
		}
		if options.ReturnMax {
			enc.SP().Atom("MAX").SP().Number(nums[len(nums)-1])
		}
	}
	if options.ReturnCount {
		enc.SP().Atom("COUNT").SP().Number(uint32(len(nums)))
	}
	if options.ReturnAll && len(nums) > 0 {
		enc.SP().Atom("ALL").SP().Atom(orderedSet(nums))
	}
	return enc.CRLF()
}

// orderedSet writes numbers as a sequence-set that keeps their order:
// only ascending runs become ranges ("4,1:3" is 4, 1, 2, 3).
func orderedSet(nums []uint32) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(nums[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(nums[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
