package config

import (
	"log/slog"
	"slices"

	"github.com/goccy/go-yaml"
)

// redacted stands in for a secret in String and LogValue.
const redacted = "[redacted]"

// Redacted returns a copy of c with every secret (digest passwords, API
// hashes) replaced by "[redacted]"; c is not changed.
func (c *Config) Redacted() Config {
	r := *c
	hide := func(s *string) {
		if *s != "" {
			*s = redacted
		}
	}
	r.SIP.Trunks = slices.Clone(c.SIP.Trunks)
	for i := range r.SIP.Trunks {
		hide(&r.SIP.Trunks[i].Password)
	}
	hide(&r.SIP.Outbound.Password)
	hide(&r.Telegram.APIHash)
	r.Telegram.Accounts = slices.Clone(c.Telegram.Accounts)
	for i := range r.Telegram.Accounts {
		hide(&r.Telegram.Accounts[i].APIHash)
	}
	return r
}

// String is the configuration as YAML with its secrets redacted.
func (c *Config) String() string {
	r := c.Redacted()
	out, err := yaml.Marshal(&r)
	if err != nil {
		return "config: " + err.Error()
	}
	return string(out)
}

// LogValue logs a summary of the configuration; secrets never appear.
func (c *Config) LogValue() slog.Value {
	accounts := make([]string, len(c.Telegram.Accounts))
	for i, a := range c.Telegram.Accounts {
		accounts[i] = a.Name
	}
	trunks := make([]string, len(c.SIP.Trunks))
	for i, t := range c.SIP.Trunks {
		trunks[i] = t.Name
	}
	return slog.GroupValue(
		slog.Int("sip_listeners", len(c.SIP.Listen)),
		slog.Any("trunks", trunks),
		slog.Any("accounts", accounts),
		slog.String("telegram_server", c.Telegram.Server.Address),
		slog.Int("sip_to_telegram_rules", len(c.Routing.SIPToTelegram.Rules)),
		slog.Int("telegram_to_sip_rules", len(c.Routing.TelegramToSIP.Rules)),
		slog.String("log_level", c.Log.Level),
	)
}
