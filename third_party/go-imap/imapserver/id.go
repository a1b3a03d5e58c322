package imapserver

// tollbridge: this file is tollbridge's (ID, RFC 2971); see PATCHES.md.

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// maxIDPairs bounds the field-value pairs kept from a client's ID; RFC
// 2971 §3.3 lets a client send no more than 30.
const maxIDPairs = 30

// SessionID is an IMAP session which supports ID (RFC 2971), in any
// state.
type SessionID interface {
	Session

	// ID receives the client's identification (nil for NIL; fields the
	// RFC does not name are left out) and returns the server's (nil for
	// NIL).
	ID(client *imap.IDData) (*imap.IDData, error)
}

func (c *Conn) handleID(dec *imapwire.Decoder) error {
	session, ok := c.session.(SessionID)
	if !ok {
		return newClientBugError("ID is not supported")
	}
	if !dec.ExpectSP() {
		return dec.Err()
	}
	client, err := readIDParams(dec)
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	server, err := session.ID(client)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ID").SP()
	pairs := idPairs(server)
	if len(pairs) == 0 {
		enc.NIL()
		return enc.CRLF()
	}
	enc.List(len(pairs)/2, func(i int) {
		enc.String(pairs[2*i]).SP()
		writeNString(enc.Encoder, pairs[2*i+1])
	})
	return enc.CRLF()
}

// readIDParams reads "(" string SP nstring *(SP string SP nstring) ")"
// or NIL.
func readIDParams(dec *imapwire.Decoder) (*imap.IDData, error) {
	var atom string
	if dec.Atom(&atom) {
		if !strings.EqualFold(atom, "NIL") {
			return nil, newClientBugError("ID: expected a list or NIL")
		}
		return nil, nil
	}
	data := &imap.IDData{}
	n := 0
	err := dec.ExpectList(func() error {
		var key, value string
		if !dec.ExpectString(&key) || !dec.ExpectSP() || !dec.ExpectNString(&value) {
			return dec.Err()
		}
		if n++; n <= maxIDPairs {
			setIDField(data, key, value)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// idFields maps the field names of RFC 2971 §3.3 to IDData's fields.
func idFields(d *imap.IDData) map[string]*string {
	return map[string]*string{
		"name": &d.Name, "version": &d.Version, "os": &d.OS,
		"os-version": &d.OSVersion, "vendor": &d.Vendor,
		"support-url": &d.SupportURL, "address": &d.Address, "date": &d.Date,
		"command": &d.Command, "arguments": &d.Arguments,
		"environment": &d.Environment,
	}
}

func setIDField(d *imap.IDData, key, value string) {
	if p, ok := idFields(d)[strings.ToLower(key)]; ok {
		*p = value
	}
}

// idPairs lists the set fields of d as key, value, key, value, in the
// order of RFC 2971 §3.3.
func idPairs(d *imap.IDData) []string {
	if d == nil {
		return nil
	}
	fields := idFields(d)
	var out []string
	for _, k := range []string{"name", "version", "os", "os-version", "vendor", "support-url",
		"address", "date", "command", "arguments", "environment"} {
		if v := *fields[k]; v != "" {
			out = append(out, k, v)
		}
	}
	return out
}

// extensionCaps lists the capabilities of tollbridge's extensions that
// the session implements: ID in every state, the others once
// authenticated.
func (c *Conn) extensionCaps() []imap.Cap {
	var caps []imap.Cap
	if _, ok := c.session.(SessionID); ok {
		caps = append(caps, imap.CapID)
	}
	if c.state != imap.ConnStateAuthenticated && c.state != imap.ConnStateSelected {
		return caps
	}
	if _, ok := c.session.(SessionSort); ok {
		caps = append(caps, imap.CapSort, imap.CapSortDisplay, imap.CapESort)
	}
	if t, ok := c.session.(SessionThread); ok {
		for _, alg := range t.ThreadAlgorithms() {
			caps = append(caps, imap.Cap("THREAD="+string(alg)))
		}
	}
	return caps
}
