package ticketserver

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// clientConfig is the part of Thunderbird's autoconfig format it reads.
type clientConfig struct {
	XMLName  xml.Name `xml:"clientConfig"`
	Version  string   `xml:"version,attr"`
	Provider struct {
		ID       string   `xml:"id,attr"`
		Domains  []string `xml:"domain"`
		Incoming []struct {
			Type     string `xml:"type,attr"`
			Hostname string `xml:"hostname"`
			Port     int    `xml:"port"`
			Socket   string `xml:"socketType"`
			Auth     string `xml:"authentication"`
			Username string `xml:"username"`
		} `xml:"incomingServer"`
		Outgoing []struct {
			Type     string `xml:"type,attr"`
			Hostname string `xml:"hostname"`
			Port     int    `xml:"port"`
			Socket   string `xml:"socketType"`
			Auth     string `xml:"authentication"`
			Username string `xml:"username"`
		} `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

var testClients = &Clients{Hostname: "mail.example.net", Domains: []string{"example.net", "example.com"}, IMAP: 1143, IMAPTLS: 993, Submission: 1587}

func TestAutoconfigServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	e.stop()
	e.cfg.Clients = testClients
	e.start()
	for _, path := range []string{"/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml?emailaddress=bob%40example.com"} {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var c clientConfig
		if err := xml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: not XML: %v\n%s", path, err, b)
		}
		p := c.Provider
		if c.Version != "1.1" || len(p.Domains) != 1 || len(p.Incoming) != 2 || len(p.Outgoing) != 1 {
			t.Fatalf("%s: config = %+v", path, c)
		}
		if in := p.Incoming[0]; in.Type != "imap" || in.Hostname != "mail.example.net" || in.Port != 993 || in.Socket != "SSL" ||
			in.Auth != "password-cleartext" || in.Username != "%EMAILADDRESS%" {
			t.Errorf("first incoming = %+v", in)
		}
		if in := p.Incoming[1]; in.Port != 1143 || in.Socket != "STARTTLS" {
			t.Errorf("second incoming = %+v", in)
		}
		if out := p.Outgoing[0]; out.Type != "smtp" || out.Port != 1587 || out.Socket != "STARTTLS" {
			t.Errorf("outgoing = %+v", out)
		}
	}
	status, _, _ := e.call("POST", "/mail/config-v1.1.xml", nil)
	if status != 405 {
		t.Errorf("POST autoconfig: %d", status)
	}
}

func TestMobileConfigIsPropertyList(t *testing.T) {
	t.Parallel()
	b, err := testClients.MobileConfig("a&b@example.net", []byte{0x30, 0x82, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	root, err := parsePlist(b)
	if err != nil {
		t.Fatalf("not a property list: %v\n%s", err, b)
	}
	top := root.(map[string]any)
	if top["PayloadType"] != "Configuration" || top["PayloadVersion"] != int64(1) {
		t.Fatalf("top = %v", top)
	}
	payloads := top["PayloadContent"].([]any)
	acct := payloads[0].(map[string]any)
	want := map[string]any{
		"EmailAccountType": "EmailTypeIMAP", "EmailAddress": "a&b@example.net",
		"IncomingMailServerHostName": "mail.example.net", "IncomingMailServerPortNumber": int64(993),
		"IncomingMailServerUseSSL": true, "OutgoingMailServerPortNumber": int64(1587), "OutgoingMailServerUseSSL": false,
		"PayloadType": "com.apple.mail.managed",
	}
	for k, v := range want {
		if acct[k] != v {
			t.Errorf("%s = %v, want %v", k, acct[k], v)
		}
	}
	cert := payloads[1].(map[string]any)
	if cert["PayloadType"] != "com.apple.security.root" || !bytes.Equal(cert["PayloadContent"].([]byte), []byte{0x30, 0x82, 1, 2}) {
		t.Errorf("certificate payload = %v", cert)
	}
	if top["PayloadUUID"] == acct["PayloadUUID"] {
		t.Error("payload UUIDs repeat")
	}
}

// parsePlist decodes an XML property list (Apple's DTD) into Go values:
// dict → map, array → slice, string, integer → int64, true/false, data.
func parsePlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "plist" {
				return nil, fmt.Errorf("root is %s", se.Name.Local)
			}
			v, err := plistValue(d)
			if err != nil {
				return nil, err
			}
			return v, nil
		}
	}
}

func nextStart(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			return nil, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("stray text %q", t)
			}
		}
	}
}

func plistValue(d *xml.Decoder) (any, error) {
	se, err := nextStart(d)
	if err != nil || se == nil {
		return nil, fmt.Errorf("value expected: %v", err)
	}
	return plistElement(d, se)
}

func plistElement(d *xml.Decoder, se *xml.StartElement) (any, error) {
	switch se.Name.Local {
	case "dict":
		m := map[string]any{}
		for {
			k, err := nextStart(d)
			if err != nil {
				return nil, err
			}
			if k == nil {
				return m, nil
			}
			var key string
			if k.Name.Local != "key" || d.DecodeElement(&key, k) != nil {
				return nil, fmt.Errorf("dict: key expected, got %s", k.Name.Local)
			}
			v, err := plistValue(d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			m[key] = v
		}
	case "array":
		var a []any
		for {
			e, err := nextStart(d)
			if err != nil {
				return nil, err
			}
			if e == nil {
				return a, nil
			}
			v, err := plistElement(d, e)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case "true", "false":
		d.Skip()
		return se.Name.Local == "true", nil
	}
	var text string
	if err := d.DecodeElement(&text, se); err != nil {
		return nil, err
	}
	switch se.Name.Local {
	case "string":
		return text, nil
	case "integer":
		return strconv.ParseInt(text, 10, 64)
	case "data":
		return base64.StdEncoding.DecodeString(text)
	}
	return nil, fmt.Errorf("unknown plist element %s", se.Name.Local)
}
