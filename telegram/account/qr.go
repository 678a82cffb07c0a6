package account

import (
	"fmt"
	"io"
	"strings"

	"rsc.io/qr"
)

// WriteQR draws text as a QR code with Unicode half blocks, two modules
// per character cell, with the 4-module quiet zone the QR standard asks
// for. Light modules are drawn (█), dark ones left blank, which reads
// correctly on the dark background of most terminals; invert swaps them
// for light backgrounds.
func WriteQR(w io.Writer, text string, invert bool) error {
	code, err := qr.Encode(text, qr.L)
	if err != nil {
		return fmt.Errorf("qr: %w", err)
	}
	const quiet = 4
	n := code.Size
	light := func(x, y int) bool {
		dark := x >= 0 && y >= 0 && x < n && y < n && code.Black(x, y)
		return dark == invert
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bottom := light(x, y), light(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	_, err = io.WriteString(w, b.String())
	return err
}
