package b2bua

import (
	"fmt"
	"net/url"
	"strings"
)

// NumberPlan turns the numbers a PBX dials into E.164.
type NumberPlan struct {
	// CountryCode is the country calling code for national numbers, digits
	// only ("49"). Empty: national numbers are not accepted.
	CountryCode string `yaml:"country_code"`
	// NationalPrefix is the trunk prefix of national numbers ("0" in most
	// of Europe, "1" in NANP, "8" in Russia). Used only with CountryCode.
	NationalPrefix string `yaml:"national_prefix"`
	// InternationalPrefix is the exit code before a country code; default
	// "00" (ITU-T E.164 Annex A; "011" in NANP).
	InternationalPrefix string `yaml:"international_prefix"`
}

// Validate checks the plan; messages name the setting.
func (n NumberPlan) Validate() error {
	if !allDigits(n.CountryCode) || len(n.CountryCode) > 3 || strings.HasPrefix(n.CountryCode, "0") {
		return fmt.Errorf("numbers.country_code %q: want 1 to 3 digits, not starting with 0 (e.g. \"49\")", n.CountryCode)
	}
	if !allDigits(n.NationalPrefix) || len(n.NationalPrefix) > 4 {
		return fmt.Errorf("numbers.national_prefix %q: want up to 4 digits (e.g. \"0\")", n.NationalPrefix)
	}
	if n.NationalPrefix != "" && n.CountryCode == "" {
		return fmt.Errorf("numbers.national_prefix %q needs numbers.country_code", n.NationalPrefix)
	}
	if !allDigits(n.InternationalPrefix) || len(n.InternationalPrefix) > 4 {
		return fmt.Errorf("numbers.international_prefix %q: want up to 4 digits (e.g. \"00\")", n.InternationalPrefix)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// visualSeparator reports RFC 3966 §5.1.1 visual separators ("-", ".",
// "(", ")") and the spaces and slashes people write in numbers (ITU-T
// E.123 §7); they carry no digits.
func visualSeparator(r rune) bool {
	switch r {
	case '-', '.', '(', ')', ' ', '/', '\t':
		return true
	}
	return false
}

// Normalize turns a dialed number into "+E.164":
//   - percent-escapes are decoded (a SIP URI user may carry "%20"), visual
//     separators dropped;
//   - "+…" stays; InternationalPrefix (default "00") becomes "+";
//   - NationalPrefix with CountryCode becomes "+" CountryCode;
//   - other digits are taken as already international ("4930…" → "+4930…").
//
// The result has 4 to 15 digits, or the error wraps ErrInvalidNumber.
func (n NumberPlan) Normalize(s string) (string, error) {
	in := s
	if strings.ContainsRune(s, '%') {
		u, err := url.PathUnescape(s)
		if err != nil {
			return "", fmt.Errorf("%w: %q: bad percent-escape", ErrInvalidNumber, in)
		}
		s = u
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && b.Len() == 0 && i == strings.IndexByte(s, '+'):
			b.WriteRune(r)
		case visualSeparator(r):
		default:
			return "", fmt.Errorf("%w: %q: unexpected %q", ErrInvalidNumber, in, r)
		}
	}
	d := b.String()
	intl := n.InternationalPrefix
	if intl == "" {
		intl = "00"
	}
	switch {
	case strings.HasPrefix(d, "+"):
	case strings.HasPrefix(d, intl):
		d = "+" + d[len(intl):]
	case n.CountryCode != "" && n.NationalPrefix != "" && strings.HasPrefix(d, n.NationalPrefix):
		d = "+" + n.CountryCode + d[len(n.NationalPrefix):]
	default:
		d = "+" + d
	}
	if !isE164(d) {
		return "", fmt.Errorf("%w: %q is not a valid international number (got %q)", ErrInvalidNumber, in, d)
	}
	return d, nil
}
