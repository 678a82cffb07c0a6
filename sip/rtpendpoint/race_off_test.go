//go:build !race

package rtpendpoint

const raceEnabled = false
