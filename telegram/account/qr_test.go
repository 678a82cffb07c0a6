package account

import (
	"strings"
	"testing"
	"unicode/utf8"

	"rsc.io/qr"
)

// TestWriteQR checks the drawing against the code's own modules: every
// cell of every line stands for the two modules it covers, inside a light
// quiet zone.
func TestWriteQR(t *testing.T) {
	const url = "tg://login?token=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
	code, err := qr.Encode(url, qr.L)
	if err != nil {
		t.Fatal(err)
	}
	for _, invert := range []bool{false, true} {
		var b strings.Builder
		if err := WriteQR(&b, url, invert); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		width := code.Size + 8
		if len(lines) != (width+1)/2 {
			t.Fatalf("invert=%v: %d lines for a %d-module code", invert, len(lines), code.Size)
		}
		light := func(x, y int) bool {
			x, y = x-4, y-4
			dark := x >= 0 && y >= 0 && x < code.Size && y < code.Size && code.Black(x, y)
			return dark == invert
		}
		for row, line := range lines {
			if n := utf8.RuneCountInString(line); n != width {
				t.Fatalf("line %d has %d cells, want %d", row, n, width)
			}
			for x, r := range []rune(line) {
				top, bottom := light(x, 2*row), light(x, 2*row+1)
				want := map[[2]bool]rune{{true, true}: '█', {true, false}: '▀', {false, true}: '▄', {false, false}: ' '}[[2]bool{top, bottom}]
				if r != want {
					t.Fatalf("invert=%v: cell %d,%d is %q, want %q", invert, x, row, r, want)
				}
			}
		}
	}
}
