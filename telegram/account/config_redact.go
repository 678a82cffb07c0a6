package account

import (
	"fmt"
	"log/slog"
)

// redacted stands in for a secret in printed configuration.
const redacted = "[redacted]"

// String prints the account's settings with the API hash redacted, so a
// %v or %+v of a Config in a log or error message leaks no credential.
func (c Config) String() string {
	hash := ""
	if c.APIHash != "" {
		hash = redacted
	}
	return fmt.Sprintf("{name:%s phone:%s session_file:%s api_id:%d api_hash:%s dc:%d dc_address:%s public_key_file:%s}",
		c.Name, c.Phone, c.SessionFile, c.APIID, hash, c.DC, c.DCAddress, c.PublicKeyFile)
}

// LogValue is the account's settings for slog, the API hash redacted.
func (c Config) LogValue() slog.Value {
	hash := ""
	if c.APIHash != "" {
		hash = redacted
	}
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("phone", c.Phone),
		slog.String("session_file", c.SessionFile),
		slog.Int("api_id", c.APIID),
		slog.String("api_hash", hash),
		slog.Int("dc", c.DC),
		slog.String("dc_address", c.DCAddress),
	)
}
