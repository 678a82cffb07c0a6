package media

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pion/datachannel"
	"github.com/pion/dtls/v3"
	"github.com/pion/sctp"
)

// The call's data channel, as tgcalls' SctpDataChannelProviderInterfaceImpl
// opens it over the DTLS transport: SCTP with ports 5000/5000 and 256 KiB
// messages, one ordered reliable channel labelled "data" on stream 0, opened
// with DCEP by the caller (kOpener) and acknowledged by the callee (kAcker).
// tgcalls sends MediaState on it (only while it is open) as text messages.
const (
	dataChannelLabel   = "data"
	dataChannelStream  = 0
	dataChannelMaxSize = 262144
	// dataChannelReadSize is the read buffer kept for the call: MediaState
	// is ~150 bytes. A larger message is read into a buffer that doubles
	// until it fits (pion keeps the message queued on io.ErrShortBuffer
	// but does not say its size), up to dataChannelMaxSize, and dropped
	// after that message.
	dataChannelReadSize = 512
)

// ErrDataChannelClosed is returned by SendData while the data channel is not open.
var ErrDataChannelClosed = errors.New("media: data channel not open")

// dataChannel is the session's channel state.
type dataChannel struct {
	mu     sync.Mutex
	ch     *datachannel.DataChannel
	assoc  *sctp.Association
	onData func(string)
	open   chan struct{}
}

// OnData sets the function that receives the peer's text messages on the
// data channel (tgcalls' MediaState JSON). Set it before Start; it runs on
// the channel's reader goroutine and must not block.
func (s *Session) OnData(f func(msg string)) {
	s.dc.mu.Lock()
	s.dc.onData = f
	s.dc.mu.Unlock()
}

// DataChannelOpen is closed when the data channel is open.
func (s *Session) DataChannelOpen() <-chan struct{} { return s.dc.open }

// SendData sends a text message on the data channel.
func (s *Session) SendData(msg string) error {
	s.dc.mu.Lock()
	ch := s.dc.ch
	s.dc.mu.Unlock()
	if ch == nil {
		return ErrDataChannelClosed
	}
	if _, err := ch.WriteDataChannel([]byte(msg), true); err != nil {
		return fmt.Errorf("media: data channel: %w", err)
	}
	return nil
}

// runDataChannel brings the data channel up over the handshaken DTLS
// connection and reads it until the session ends. The SCTP association
// and the channel are not needed for the call to be connected (tgcalls
// does not wait for them either); failures are logged, never fatal.
func (s *Session) runDataChannel(conn *dtls.Conn) {
	defer s.wg.Done()
	assoc, err := sctp.ClientContext(s.ctx,
		sctp.WithNetConn(conn),
		sctp.WithMaxMessageSize(dataChannelMaxSize),
		sctp.WithLoggerFactory(s.pionLogs()),
	)
	if err != nil {
		s.log.Debug("data channel: sctp association", "err", err)
		return
	}
	s.dc.mu.Lock()
	s.dc.assoc = assoc
	s.dc.mu.Unlock()
	defer assoc.Close() //nolint:errcheck // closing at the end of the session; nothing to report
	cfg := &datachannel.Config{
		ChannelType:   datachannel.ChannelTypeReliable,
		Label:         dataChannelLabel,
		LoggerFactory: s.pionLogs(),
	}
	var ch *datachannel.DataChannel
	if s.cfg.Outgoing {
		ch, err = datachannel.Dial(assoc, dataChannelStream, cfg)
	} else {
		ch, err = datachannel.Accept(assoc, cfg)
	}
	if err != nil {
		s.log.Debug("data channel: open", "err", err)
		return
	}
	s.dc.mu.Lock()
	s.dc.ch = ch
	s.dc.mu.Unlock()
	close(s.dc.open)
	s.log.Debug("data channel open", "label", ch.Config.Label, "stream", ch.StreamIdentifier())
	small := make([]byte, dataChannelReadSize)
	buf := small
	for {
		n, isString, err := ch.ReadDataChannel(buf)
		if errors.Is(err, io.ErrShortBuffer) && len(buf) < dataChannelMaxSize {
			// pion keeps the message queued: read it again with twice
			// the room.
			buf = make([]byte, min(2*len(buf), dataChannelMaxSize))
			continue
		}
		if err != nil {
			return
		}
		s.dc.mu.Lock()
		f := s.dc.onData
		s.dc.mu.Unlock()
		if isString && f != nil {
			f(string(buf[:n]))
		}
		buf = small
	}
}

// closeDataChannel ends the association so that its goroutines exit.
func (s *Session) closeDataChannel() {
	s.dc.mu.Lock()
	assoc := s.dc.assoc
	s.dc.mu.Unlock()
	if assoc != nil {
		_ = assoc.Close() // idempotent; the DTLS connection is going away too
	}
}
