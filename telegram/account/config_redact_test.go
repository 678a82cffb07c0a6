package account

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestConfigRedactsAPIHash: neither fmt nor slog prints the API hash.
func TestConfigRedactsAPIHash(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	c := Config{Name: "main", Phone: "+15550001", APIID: 42, APIHash: secret, DC: 2, DCAddress: "127.0.0.1:4430"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("account", "config", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", &c), buf.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("API hash printed: %s", s)
		}
		if !strings.Contains(s, "main") || !strings.Contains(s, redacted) {
			t.Errorf("settings missing: %s", s)
		}
	}
}
