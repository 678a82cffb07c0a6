//go:build race

package rtpendpoint

// raceEnabled: the race detector allocates on goroutine hand-offs, so
// allocation counts across goroutines are checked only without it.
const raceEnabled = true
