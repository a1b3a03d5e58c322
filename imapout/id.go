package imapout

import (
	"runtime/debug"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

var _ imapserver.SessionID = (*session)(nil)

// ID implements imapserver.SessionID (RFC 2971): the client's
// identification is logged at debug level; the answer names the server,
// and its version only once the client has logged in (RFC 2971 §5 leaves
// what to reveal to the server).
func (s *session) ID(client *imap.IDData) (*imap.IDData, error) {
	if client != nil {
		s.srv.log.Debug("imap: client ID", "ip", s.ip.String(), "name", client.Name, "version", client.Version,
			"os", client.OS, "os-version", client.OSVersion, "vendor", client.Vendor)
	}
	id := &imap.IDData{Name: "tollbridge"}
	if s.user != nil {
		id.Version = buildVersion()
	}
	return id, nil
}

// buildVersion is the version of the running binary: its module version,
// else its VCS revision, else "devel".
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, kv := range info.Settings {
		if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
			return kv.Value[:12]
		}
	}
	return "devel"
}
