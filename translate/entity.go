package translate

import "strings"

// entityField lists the header fields the scanner reads in every entity.
func entityField(name string) bool {
	switch name {
	case "content-type", "content-transfer-encoding", "content-disposition":
		return true
	}
	return false
}

// parseEntity scans the entity that starts at start, inside the
// multiparts whose boundaries are in stack. It returns the entity and the
// stop that ends it. errOverflow means its header section did not fit.
func (p *parser) parseEntity(start int64, depth int, stack []string, defaultType string) (*entity, stop, error) {
	if p.nodes == 0 {
		return nil, stop{}, errOverflow
	}
	p.nodes--
	hdr, hend, s, cut, err := p.readHeader(start, stack)
	if err != nil {
		return nil, stop{}, err
	}
	e := &entity{header: hdr, end: hend}
	e.describe(defaultType)
	if cut {
		return e, s, nil
	}
	container := depth < p.lim.depth && identityCTE(e.cte)
	switch {
	case container && strings.HasPrefix(e.media, "multipart/"):
		_, params := parseMediaType(e.ctype)
		if b := params["boundary"]; b != "" && len(b) <= p.lim.boundary && !strings.ContainsAny(b, "\r\n") {
			return p.parseMultipart(e, hend, depth, stack, b)
		}
	case container && (e.media == "message/rfc822" || e.media == "message/global"):
		return p.parseMessage(e, hend, depth, stack)
	}
	return p.leaf(e, hend, hend, stack)
}

// describe reads the entity's Content-Type, Content-Transfer-Encoding and
// file name from its header section.
func (e *entity) describe(defaultType string) {
	fs := parseHeader(e.header, entityField)
	ct, ok := first(fs, "content-type")
	if ok {
		e.ctype = toUTF8(ct)
		e.media, _ = parseMediaType(e.ctype)
	}
	if !ok {
		e.ctype, e.media = defaultType, defaultType
	} else if !validMediaType(e.media) {
		e.media = "text/plain" // RFC 2045 §5.2
	}
	if v, ok := first(fs, "content-transfer-encoding"); ok {
		e.cte = strings.ToLower(v)
	}
	if v, ok := first(fs, "content-disposition"); ok {
		_, params := parseMediaType(toUTF8(v))
		e.name = params["filename"]
	}
	if e.name == "" && e.ctype != "" {
		_, params := parseMediaType(e.ctype)
		e.name = params["name"]
	}
	e.name = decodeWords(e.name)
}

// identityCTE reports whether a body with this transfer encoding can be
// read as MIME structure (RFC 2045 §6.4: multipart and message bodies are
// never encoded).
func identityCTE(cte string) bool {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// leaf makes e a leaf whose body starts at body and runs to the first
// delimiter line of stack at or after from.
func (p *parser) leaf(e *entity, body, from int64, stack []string) (*entity, stop, error) {
	s, err := p.findStop(body, from, stack)
	if err != nil {
		return nil, stop{}, err
	}
	e.kind, e.items, e.child = leafEntity, nil, nil
	e.end, e.borrow = s.start, s.crlf
	return e, s, nil
}

// parseMultipart scans the body of multipart e, which starts at body.
// When the body cannot be kept as structure (no delimiter, limits), e
// becomes a leaf and the budget it used is given back.
func (p *parser) parseMultipart(e *entity, body int64, depth int, stack []string, boundary string) (*entity, stop, error) {
	budget, nodes := p.budget, p.nodes
	demote := func(from int64) (*entity, stop, error) {
		p.budget, p.nodes = budget, nodes
		return p.leaf(e, body, from, stack)
	}
	inner := append(stack[:len(stack):len(stack)], boundary)
	level := len(stack)
	d, err := p.findStop(body, body, inner)
	if err != nil {
		return nil, stop{}, err
	}
	if !d.found || d.level != level {
		// The boundary never appears: the body is not multipart at all.
		e.kind = leafEntity
		e.end, e.borrow = d.start, d.crlf
		return e, d, nil
	}
	if d.close || !p.spend(d.end-body) {
		return demote(body)
	}
	e.kind = multipartEntity
	if d.start > body {
		e.items = append(e.items, mpItem{segEnd: d.start})
	}
	e.items = append(e.items, mpItem{segEnd: d.end})
	childType := "text/plain"
	if e.media == "multipart/digest" {
		childType = "message/rfc822"
	}
	for {
		child, cs, err := p.parseEntity(d.end, depth+1, inner, childType)
		if err == errOverflow {
			return demote(d.end)
		}
		if err != nil {
			return nil, stop{}, err
		}
		e.items = append(e.items, mpItem{child: child})
		if !cs.found || cs.level != level {
			// Unterminated: an outer delimiter or the end of input ends it.
			e.end = cs.start
			return e, cs, nil
		}
		if !p.spend(cs.end - cs.start) {
			return demote(d.end)
		}
		e.items = append(e.items, mpItem{segEnd: cs.end})
		if cs.close {
			return p.epilogue(e, cs.end, stack, demote)
		}
		d = cs
	}
}

// epilogue scans what follows the close delimiter of e, up to the stop of
// the enclosing multipart.
func (p *parser) epilogue(e *entity, from int64, stack []string, demote func(int64) (*entity, stop, error)) (*entity, stop, error) {
	s, err := p.findStop(from, from, stack)
	if err != nil {
		return nil, stop{}, err
	}
	if s.start > from {
		if !p.spend(s.start - from) {
			return demote(from)
		}
		e.items = append(e.items, mpItem{segEnd: s.start})
	}
	e.end = s.start
	return e, s, nil
}

// parseMessage scans the body of message/rfc822 e as one nested entity.
func (p *parser) parseMessage(e *entity, body int64, depth int, stack []string) (*entity, stop, error) {
	budget, nodes := p.budget, p.nodes
	child, s, err := p.parseEntity(body, depth+1, stack, "text/plain")
	if err != nil && err != errOverflow {
		return nil, stop{}, err
	}
	if err == errOverflow || len(child.header) == 0 {
		p.budget, p.nodes = budget, nodes
		return p.leaf(e, body, body, stack)
	}
	e.kind, e.child, e.end = messageEntity, child, s.start
	return e, s, nil
}
