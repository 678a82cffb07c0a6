package account

import (
	"errors"
	"strings"
	"testing"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tgerr"
)

func TestConfigValidate(t *testing.T) {
	good := testConfig(t, "Trunk")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.DCAddress = "" }, "dc_address is required"},
		{func(c *Config) { c.DCAddress = "telegram.org:443" }, "want IP:port"},
		{func(c *Config) { c.PublicKeyFile = "" }, "public_key_file is required"},
		{func(c *Config) { c.DC = 0 }, "dc is required"},
		{func(c *Config) { c.APIID = 0 }, "TGSIP_API_ID"},
		{func(c *Config) { c.APIHash = "" }, "TGSIP_API_HASH"},
		{func(c *Config) { c.SessionFile = "" }, "session_file"},
		{func(c *Config) { c.Phone = "5550101" }, "international format"},
		{func(c *Config) { c.Name = "" }, "name is required"},
	} {
		c := good
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
		if _, err := New(c, Options{}); err == nil {
			t.Errorf("New accepted a config missing %q", tc.want)
		}
	}
	c := good
	c.PublicKeyFile = c.SessionFile // does not exist
	if _, err := New(c, Options{}); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("missing key file: %v", err)
	}

	// A key given by code (the demo's emulator) needs no file.
	c = good
	c.PublicKeyFile = ""
	key, err := ReadPublicKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c.PublicKey = key
	if _, err := New(c, Options{}); err != nil {
		t.Errorf("key by code: %v", err)
	}

	env := map[string]string{EnvAPIID: "42", EnvAPIHash: "abc"}
	c = good
	c.APIID, c.APIHash = 0, ""
	c, err = c.WithEnv(func(k string) string { return env[k] })
	if err != nil || c.APIID != 42 || c.APIHash != "abc" {
		t.Errorf("from env: %+v %v", c, err)
	}
	c = good
	if c, _ = c.WithEnv(func(k string) string { return env[k] }); c.APIID != good.APIID {
		t.Error("env overrode the config")
	}
	c.APIID = 0
	if _, err := c.WithEnv(func(string) string { return "x" }); err == nil {
		t.Error("non-numeric TGSIP_API_ID accepted")
	}
}

// TestExplain pins the operator's message for each auth error, row by row.
func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{tgerr.New(400, "PHONE_CODE_INVALID"), "login code is wrong"},
		{tgerr.New(400, "PHONE_CODE_EXPIRED"), "login code has expired"},
		{auth.ErrPasswordAuthNeeded, "two-step verification"},
		{tgerr.New(401, "SESSION_PASSWORD_NEEDED"), "two-step verification"},
		{auth.ErrPasswordInvalid, "password is wrong"},
		{tgerr.New(420, "FLOOD_WAIT_120"), "wait 2m0s"},
		{&FloodWaitError{Wait: 5e9}, "wait 5s"},
		{&FloodWaitError{PeerFlood: true}, "PEER_FLOOD"},
		{tgerr.New(400, "PHONE_NUMBER_BANNED"), "banned"},
		{tgerr.New(401, "AUTH_KEY_UNREGISTERED"), "ended elsewhere"},
		{tgerr.New(401, "SESSION_REVOKED"), "ended elsewhere"},
		{tgerr.New(406, "AUTH_KEY_DUPLICATED"), "two places"},
		{tgerr.New(400, "PHONE_NUMBER_UNOCCUPIED"), "no Telegram account"},
		{tgerr.New(400, "AUTH_TOKEN_EXPIRED"), "QR code expired"},
		{tgerr.New(400, "API_ID_INVALID"), "api_id"},
		{tgerr.New(400, "SOMETHING_NEW"), "400 SOMETHING_NEW"},
		{errors.New("plain"), "plain"},
	} {
		if got := Explain(tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("Explain(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
	if Explain(nil) != "" {
		t.Error("Explain(nil)")
	}
}
