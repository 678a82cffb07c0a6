package account

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/internal/gotdquiet"
)

// Environment variables that supply the API credentials when the config
// leaves them empty (so that they can stay out of the YAML file).
const (
	EnvAPIID   = "TGSIP_API_ID"
	EnvAPIHash = "TGSIP_API_HASH"
)

// Config is one Telegram account of the trunk, as the `telegram: accounts:`
// list of the YAML config holds it.
//
// The server is never implied: DCAddress, DC and PublicKeyFile must be set,
// so that the trunk reaches exactly the network the operator named (the
// emulator in tests and `tgsip demo`, Telegram's production DC from
// my.telegram.org otherwise) and no hard-coded public server.
type Config struct {
	// Name identifies the account in logs, `tgsip login --account` and
	// `tgsip accounts`.
	Name string `yaml:"name"`
	// Phone is the account's number in international format (+E.164).
	Phone string `yaml:"phone"`
	// SessionFile is where the session (auth key) is kept, mode 0600.
	SessionFile string `yaml:"session_file"`
	// APIID and APIHash are the application credentials from
	// my.telegram.org; empty means TGSIP_API_ID / TGSIP_API_HASH.
	APIID   int    `yaml:"api_id"`
	APIHash string `yaml:"api_hash"`
	// DC is the data-center id DCAddress serves.
	DC int `yaml:"dc"`
	// DCAddress is the MTProto server, host:port (an IP address).
	DCAddress string `yaml:"dc_address"`
	// PublicKeyFile is the server's RSA public key, PEM ("RSA PUBLIC KEY"
	// PKCS#1 or "PUBLIC KEY" PKIX).
	PublicKeyFile string `yaml:"public_key_file"`
	// PublicKey is the server's key given by code (`tgsip demo` passes its
	// in-process emulator's); it takes the place of PublicKeyFile.
	PublicKey *rsa.PublicKey `yaml:"-"`
}

// WithEnv returns c with APIID and APIHash taken from the environment
// (getenv, normally os.Getenv) where the config leaves them empty.
func (c Config) WithEnv(getenv func(string) string) (Config, error) {
	if c.APIID == 0 {
		if v := strings.TrimSpace(getenv(EnvAPIID)); v != "" {
			id, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("account %q: %s=%q is not a number", c.Name, EnvAPIID, v)
			}
			c.APIID = id
		}
	}
	if c.APIHash == "" {
		c.APIHash = strings.TrimSpace(getenv(EnvAPIHash))
	}
	return c, nil
}

// Validate reports the first setting that is missing or wrong, in words an
// operator can act on.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" {
		bad("name is required")
	}
	if c.Phone != "" && !isE164(c.Phone) {
		bad("phone %q: want international format, + and 7 to 15 digits", c.Phone)
	}
	if c.SessionFile == "" {
		bad("session_file is required")
	}
	if c.APIID <= 0 {
		bad("api_id is required (from my.telegram.org; or set %s)", EnvAPIID)
	}
	if c.APIHash == "" {
		bad("api_hash is required (from my.telegram.org; or set %s)", EnvAPIHash)
	}
	if c.DC <= 0 {
		bad("dc is required (the data-center id of dc_address)")
	}
	if c.DCAddress == "" {
		bad("dc_address is required (no Telegram server is built in)")
	} else if _, err := netip.ParseAddrPort(c.DCAddress); err != nil {
		bad("dc_address %q: want IP:port", c.DCAddress)
	}
	if c.PublicKeyFile == "" && c.PublicKey == nil {
		bad("public_key_file is required (no Telegram key is built in)")
	}
	if len(errs) == 0 {
		return nil
	}
	prefix := "account"
	if c.Name != "" {
		prefix = fmt.Sprintf("account %q", c.Name)
	}
	return fmt.Errorf("%s: %w", prefix, errors.Join(errs...))
}

// isE164 reports whether s is + followed by 7 to 15 digits.
func isE164(s string) bool {
	d, ok := strings.CutPrefix(s, "+")
	if !ok || len(d) < 7 || len(d) > 15 {
		return false
	}
	for _, r := range d {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ReadPublicKey reads an RSA public key in PEM form, PKCS#1 ("RSA PUBLIC
// KEY", as Telegram publishes it) or PKIX ("PUBLIC KEY").
func ReadPublicKey(path string) (*rsa.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("public key %s: no PEM block", path)
	}
	switch block.Type {
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		return k, nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s: not an RSA key", path)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("public key %s: PEM block %q, want RSA PUBLIC KEY", path, block.Type)
}

// clientOptions are the gotd options that reach the configured server and
// nothing else: the DC list holds only DCAddress (static), and the key
// list only the configured key, so gotd's built-in production DCs and keys
// are never used.
func (c Config) clientOptions() (telegram.Options, error) {
	if err := c.Validate(); err != nil {
		return telegram.Options{}, err
	}
	key := c.PublicKey
	if key == nil {
		k, err := ReadPublicKey(c.PublicKeyFile)
		if err != nil {
			return telegram.Options{}, fmt.Errorf("account %q: %w", c.Name, err)
		}
		key = k
	}
	addr := netip.MustParseAddrPort(c.DCAddress)
	return telegram.Options{
		PublicKeys: []telegram.PublicKey{{RSA: key}},
		DC:         c.DC,
		DCList: dcs.List{Options: []tg.DCOption{{
			ID:        c.DC,
			IPAddress: addr.Addr().String(),
			Port:      int(addr.Port()),
			Static:    true,
			Ipv6:      addr.Addr().Is6(),
		}}},
		Resolver: dcs.Plain(dcs.PlainOptions{}),
		// No gzip_packed: gotd packs every message over 1 KiB, and what
		// the trunk sends that large is call signaling, end-to-end
		// encrypted and therefore incompressible. tdlib sends a query
		// packed only when gzip shrinks it below 90 % (NetQueryCreator::
		// create, gzencode(…, 0.9)), so it sends these unpacked too. Each
		// packing also costs a gzip writer of several hundred KiB that
		// gotd's pool loses at every GC: garbage at call setup that
		// leaves the heap fragmented (docs/performance.md, memory).
		CompressThreshold: -1,
		Logger:            gotdquiet.Logger{},
	}, nil
}
