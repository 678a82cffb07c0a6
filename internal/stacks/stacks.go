// Package stacks gives tests the stack traces of every goroutine, to count
// the goroutines a part leaves running.
package stacks

import "runtime"

// All returns the stack traces of all goroutines (runtime.Stack with all
// set), in a buffer grown until they fit. Goroutines are separated by a
// blank line.
func All() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
