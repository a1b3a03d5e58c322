package ticketserver

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"strings"
	"text/template"
)

// Clients is how mail clients reach this bridge, for their automatic
// configuration: Thunderbird's autoconfig file (served by the HTTPS
// listener) and Apple's configuration profile (`bridge user mobileconfig`).
type Clients struct {
	Hostname string
	Domains  []string
	// Ports of the listeners; 0 means not enabled.
	IMAP, IMAPTLS, Submission, SubmissionTLS int
}

type server struct {
	Type, Socket string
	Port         int
}

// servers lists the client listeners, implicit TLS first (RFC 8314
// prefers it), then STARTTLS.
func (c Clients) servers() (imap, smtp []server) {
	if c.IMAPTLS != 0 {
		imap = append(imap, server{"imap", "SSL", c.IMAPTLS})
	}
	if c.IMAP != 0 {
		imap = append(imap, server{"imap", "STARTTLS", c.IMAP})
	}
	if c.SubmissionTLS != 0 {
		smtp = append(smtp, server{"smtp", "SSL", c.SubmissionTLS})
	}
	if c.Submission != 0 {
		smtp = append(smtp, server{"smtp", "STARTTLS", c.Submission})
	}
	return imap, smtp
}

// autoconfigTmpl is Thunderbird's clientConfig version 1.1.
var autoconfigTmpl = template.Must(template.New("autoconfig").Parse(`<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{{.Domain}}">
    <domain>{{.Domain}}</domain>
    <displayName>{{.Domain}} (tollbridge)</displayName>
    <displayShortName>{{.Domain}}</displayShortName>
{{- range .IMAP}}
    <incomingServer type="imap">
      <hostname>{{$.Hostname}}</hostname>
      <port>{{.Port}}</port>
      <socketType>{{.Socket}}</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
{{- end}}
{{- range .SMTP}}
    <outgoingServer type="smtp">
      <hostname>{{$.Hostname}}</hostname>
      <port>{{.Port}}</port>
      <socketType>{{.Socket}}</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
{{- end}}
  </emailProvider>
</clientConfig>
`))

// Autoconfig is the autoconfig file for domain.
func (c Clients) Autoconfig(domain string) []byte {
	imap, smtp := c.servers()
	var b bytes.Buffer
	autoconfigTmpl.Execute(&b, map[string]any{"Domain": html.EscapeString(domain), "Hostname": html.EscapeString(c.Hostname), "IMAP": imap, "SMTP": smtp})
	return b.Bytes()
}

// serveAutoconfig answers /mail/config-v1.1.xml and
// /.well-known/autoconfig/mail/config-v1.1.xml for the domain of the
// emailaddress parameter, or of the Host (autoconfig.DOMAIN), or the first.
func (s *Server) serveAutoconfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, errorf(http.StatusMethodNotAllowed, "method %s not allowed, use GET", r.Method))
		return
	}
	domain := ""
	if _, d, ok := strings.Cut(r.URL.Query().Get("emailaddress"), "@"); ok {
		domain = strings.ToLower(d)
	} else {
		host := strings.ToLower(strings.Split(r.Host, ":")[0])
		domain = strings.TrimPrefix(host, "autoconfig.")
	}
	if !contains(s.cfg.Clients.Domains, domain) {
		if len(s.cfg.Clients.Domains) == 0 {
			s.fail(w, r, errorf(http.StatusNotFound, "no mail domains"))
			return
		}
		domain = s.cfg.Clients.Domains[0]
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Write(s.cfg.Clients.Autoconfig(domain))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mobileconfigTmpl is an Apple configuration profile with one mail account
// (com.apple.mail.managed) and, when the certificate is self-signed, that
// certificate as a trusted root so Apple Mail connects without a warning.
var mobileconfigTmpl = template.Must(template.New("mobileconfig").Parse(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key>
      <string>{{.Address}}</string>
      <key>EmailAccountName</key>
      <string>{{.Local}}</string>
      <key>EmailAccountType</key>
      <string>EmailTypeIMAP</string>
      <key>EmailAddress</key>
      <string>{{.Address}}</string>
      <key>IncomingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key>
      <string>{{.Hostname}}</string>
      <key>IncomingMailServerPortNumber</key>
      <integer>{{.IMAP.Port}}</integer>
      <key>IncomingMailServerUseSSL</key>
      <{{.IMAPSSL}}/>
      <key>IncomingMailServerUsername</key>
      <string>{{.Address}}</string>
      <key>OutgoingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key>
      <string>{{.Hostname}}</string>
      <key>OutgoingMailServerPortNumber</key>
      <integer>{{.SMTP.Port}}</integer>
      <key>OutgoingMailServerUseSSL</key>
      <{{.SMTPSSL}}/>
      <key>OutgoingMailServerUsername</key>
      <string>{{.Address}}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key>
      <true/>
      <key>PayloadDescription</key>
      <string>Mail account {{.Address}}</string>
      <key>PayloadDisplayName</key>
      <string>{{.Address}}</string>
      <key>PayloadIdentifier</key>
      <string>{{.ID}}.account</string>
      <key>PayloadType</key>
      <string>com.apple.mail.managed</string>
      <key>PayloadUUID</key>
      <string>{{.UUID1}}</string>
      <key>PayloadVersion</key>
      <integer>1</integer>
      <key>PreventAppSheet</key>
      <false/>
      <key>PreventMove</key>
      <false/>
      <key>SMIMEEnabled</key>
      <false/>
    </dict>
{{- if .Cert}}
    <dict>
      <key>PayloadCertificateFileName</key>
      <string>{{.Hostname}}.cer</string>
      <key>PayloadContent</key>
      <data>{{.Cert}}</data>
      <key>PayloadDescription</key>
      <string>The self-signed certificate of {{.Hostname}}</string>
      <key>PayloadDisplayName</key>
      <string>{{.Hostname}}</string>
      <key>PayloadIdentifier</key>
      <string>{{.ID}}.certificate</string>
      <key>PayloadType</key>
      <string>com.apple.security.root</string>
      <key>PayloadUUID</key>
      <string>{{.UUID2}}</string>
      <key>PayloadVersion</key>
      <integer>1</integer>
    </dict>
{{- end}}
  </array>
  <key>PayloadDescription</key>
  <string>Sets up Mail for {{.Address}} on tollbridge.</string>
  <key>PayloadDisplayName</key>
  <string>{{.Address}} (tollbridge)</string>
  <key>PayloadIdentifier</key>
  <string>{{.ID}}</string>
  <key>PayloadRemovalDisallowed</key>
  <false/>
  <key>PayloadType</key>
  <string>Configuration</string>
  <key>PayloadUUID</key>
  <string>{{.UUID0}}</string>
  <key>PayloadVersion</key>
  <integer>1</integer>
</dict>
</plist>
`))

// MobileConfig is an Apple configuration profile for address. selfSigned,
// when not nil, is the DER certificate to install as trusted.
func (c Clients) MobileConfig(address string, selfSigned []byte) ([]byte, error) {
	imap, smtp := c.servers()
	if len(imap) == 0 || len(smtp) == 0 {
		return nil, fmt.Errorf("mobileconfig: IMAP and submission listeners must be enabled")
	}
	local, domain, _ := strings.Cut(address, "@")
	parts := strings.Split(domain, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	data := map[string]any{
		"Address": html.EscapeString(address), "Local": html.EscapeString(local), "Hostname": html.EscapeString(c.Hostname),
		"IMAP": imap[0], "SMTP": smtp[0], "IMAPSSL": imap[0].Socket == "SSL", "SMTPSSL": smtp[0].Socket == "SSL",
		"ID": html.EscapeString(strings.Join(parts, ".") + ".tollbridge." + local), "UUID0": uuid(), "UUID1": uuid(), "UUID2": uuid(),
	}
	if selfSigned != nil {
		data["Cert"] = base64.StdEncoding.EncodeToString(selfSigned)
	}
	var b bytes.Buffer
	if err := mobileconfigTmpl.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// uuid is a random (version 4) UUID.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
