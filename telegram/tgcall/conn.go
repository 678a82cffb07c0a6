package tgcall

import (
	"sync"

	"github.com/tgsip/tgsip/telegram/media"
	"github.com/tgsip/tgsip/telegram/wire"
)

// Audio is the negotiated audio of a connected call: what rtpbridge writes
// in the RTP headers it sends and expects in those it receives.
type Audio struct {
	// SSRC and PayloadType of our outgoing Opus stream.
	SSRC        uint32
	PayloadType uint8
	// Header extension ids the peer accepted (0 = not negotiated).
	AbsSendTimeID, TransportCCID int
	// RemoteSSRC and RemotePayloadType of the peer's stream (0 until the
	// peer's offer arrived).
	RemoteSSRC        uint32
	RemotePayloadType uint8
}

// MediaState is the peer's reported state (tgcalls MediaState message).
type MediaState = wire.MediaState

// Conn is the media side of a connected call: the lean RTP path through the
// call's SRTP contexts (no track or interceptor stack; RTCP receiver reports
// and transport-cc feedback are produced by telegram/media).
type Conn struct {
	call *Call
	sess *media.Session

	mu          sync.Mutex
	audio       Audio
	remoteState MediaState
	stateChange chan struct{} // closed and replaced on every remote MediaState
}

func newConn(call *Call, sess *media.Session, audio Audio) *Conn {
	return &Conn{call: call, sess: sess, audio: audio, stateChange: make(chan struct{})}
}

// ReadRTP reads the next decrypted RTP packet from the peer into b.
func (c *Conn) ReadRTP(b []byte) (int, error) { return c.sess.ReadRTP(b) }

// ErrPushStopped is what ReadRTP returns when it was blocked by PushRTP and
// the push was stopped (media.ErrPushStopped).
var ErrPushStopped = media.ErrPushStopped

// PushRTP calls deliver with every RTP packet received from the peer (plain
// RTP, exactly what ReadRTP would have returned) on the call's receiving
// goroutine, until stop is called or the call's media ends: the
// run-to-completion path of a passthrough bridge (rtpbridge's Pusher). deliver
// must not block, must not keep b and must not call stop; it may call WriteRTP
// of another endpoint. While pushing, ReadRTP blocks until stop is called
// (then it returns 0, ErrPushStopped) or the media ends (then it returns the
// end error). stop returns once no deliver call is running and none will
// start. See media.Session.PushRTP.
func (c *Conn) PushRTP(deliver func(b []byte)) (stop func()) { return c.sess.PushRTP(deliver) }

// WriteRTP sends one plain RTP packet (built with Audio's SSRC and payload
// type) to the peer through SRTP.
func (c *Conn) WriteRTP(b []byte) error { return c.sess.WriteRTP(b) }

// Audio is the negotiated audio.
func (c *Conn) Audio() Audio {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.audio
}

// RemoteState is the peer's last MediaState (muted etc.).
func (c *Conn) RemoteState() MediaState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteState
}

// RemoteStateChanged is closed when the next MediaState from the peer
// arrives; call it again for the one after.
func (c *Conn) RemoteStateChanged() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateChange
}

// SetMuted tells the peer we are muted (or on hold) or not.
func (c *Conn) SetMuted(muted bool) { c.call.box.post(evMuted{muted}) }

// DataChannelOpen is closed when the call's data channel (tgcalls' "data"
// channel over SCTP) is open; MediaState then travels on it.
func (c *Conn) DataChannelOpen() <-chan struct{} { return c.sess.DataChannelOpen() }

// Stats are the media counters of the call.
func (c *Conn) Stats() media.Stats { return c.sess.Stats() }

func (c *Conn) setAudio(a Audio) {
	c.mu.Lock()
	c.audio = a
	c.mu.Unlock()
}

func (c *Conn) setRemoteState(s MediaState) {
	c.mu.Lock()
	c.remoteState = s
	close(c.stateChange)
	c.stateChange = make(chan struct{})
	c.mu.Unlock()
}
