package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/gotd/td/tg"
	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// heardWindow is how much of the latest received audio a Probe keeps:
// one second at 48 kHz.
const heardWindow = opusRate

// Probe is a call a demo user placed with Users.Call: it plays a tone into
// the call once connected and keeps the latest second of what it hears.
type Probe struct {
	// Call is the Telegram call; Hangup it to end the probe.
	Call *tgcall.Call

	mu      sync.Mutex
	packets int
	pcm     []int16 // the latest heardWindow samples, oldest first
}

// Heard is what a Probe has received so far.
type Heard struct {
	// Packets is the number of RTP packets received.
	Packets int
	// Frequency is the dominant frequency of the last second, in Hz (100 to
	// 4000 in 2 Hz steps), and Prominence how far it stands out (power over
	// the mean power of the scan: a pure tone gives tens, noise about 1).
	Frequency, Prominence float64
	// RMS is the level of the last second (0 is silence).
	RMS float64
}

// Heard reports what the probe has received.
func (p *Probe) Heard() Heard {
	p.mu.Lock()
	pcm := append([]int16(nil), p.pcm...)
	h := Heard{Packets: p.packets}
	p.mu.Unlock()
	if len(pcm) > 0 {
		h.Frequency, h.Prominence = audiotest.DominantFrequency(pcm, opusRate, 100, 4000, 2)
		h.RMS = audiotest.RMS(pcm)
	}
	return h
}

func (p *Probe) keep(pcm []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.packets++
	p.pcm = append(p.pcm, pcm...)
	if over := len(p.pcm) - heardWindow; over > 0 {
		p.pcm = append(p.pcm[:0], p.pcm[over:]...)
	}
}

// Call makes the demo user from (a Name in Directory that logs in: not
// private) call the Telegram user to, written "+E.164" or "@username", as
// that demo user's own client resolves them (contacts.resolvePhone, falling
// back to importing the number as a contact, or contacts.resolveUsername).
// It returns once Telegram accepted the call request; the Probe then plays
// Options.ToneFrequency into the call once it is connected and records
// what it hears, until the call ends (Call.Hangup, the peer, or Close).
func (u *Users) Call(ctx context.Context, from, to string) (*Probe, error) {
	a := u.accounts[from]
	if a == nil {
		return nil, fmt.Errorf("demo: %q is not a demo user that places calls", from)
	}
	peer, err := resolve(ctx, a.client.API(), to)
	if err != nil {
		return nil, fmt.Errorf("demo: %s calling %s: %w", from, to, err)
	}
	c, err := a.engine.Dial(ctx, peer)
	if err != nil {
		return nil, fmt.Errorf("demo: %s calling %s: %w", from, to, err)
	}
	p := &Probe{Call: c}
	if !u.spawn(func() { u.probe(p) }) {
		c.Hangup()
		return nil, errors.New("demo: closed")
	}
	return p, nil
}

// probe runs one placed call's media: a tone out, the peer's audio kept.
func (u *Users) probe(p *Probe) {
	c := p.Call
	select {
	case <-c.Connected():
	case <-c.Done():
		return
	case <-u.ctx.Done():
		c.Hangup()
		<-c.Done()
		return
	}
	conn := c.Conn()
	read := make(chan struct{})
	go func() {
		defer close(read)
		err := p.listen(conn)
		c.Logger().Debug("demo: probe stopped listening", "err", err)
	}()
	if err := playTone(u.ctx, conn, u.opts.ToneFrequency, c.Done()); err != nil {
		c.Logger().Debug("demo: probe tone ended", "err", err)
		c.Hangup()
	}
	<-read // ReadRTP fails once the call's media is closed
}

// listen decodes the peer's Opus into the probe's window until the call
// ends.
func (p *Probe) listen(conn rtpConn) error {
	dec, err := codec.NewOpusDecoder(opusRate)
	if err != nil {
		return err
	}
	buf := make([]byte, 1500)
	pcm := make([]int16, opusRate*120/1000) // the longest Opus packet
	var pkt rtp.Packet
	for {
		n, err := conn.ReadRTP(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			return err
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		m, err := dec.Decode(pkt.Payload, pcm)
		if err != nil {
			continue // a bad packet is dropped; the decoder stays usable
		}
		p.keep(pcm[:m])
	}
}

// resolve turns "+E.164" or "@username" into an input user, through the
// account's own MTProto client.
func resolve(ctx context.Context, api *tg.Client, to string) (tg.InputUserClass, error) {
	var (
		res *tg.ContactsResolvedPeer
		err error
	)
	switch {
	case strings.HasPrefix(to, "@"):
		res, err = api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: to[1:]})
	case strings.HasPrefix(to, "+"):
		res, err = api.ContactsResolvePhone(ctx, to[1:])
		if err != nil {
			// A number hidden by its phone privacy rule is still found by
			// importing it as a contact (core.telegram.org/method/contacts.resolvePhone).
			return importPhone(ctx, api, to)
		}
	default:
		return nil, fmt.Errorf("%q: want +E.164 or @username", to)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", to, err)
	}
	for _, uc := range res.Users {
		if user, ok := uc.(*tg.User); ok {
			return user.AsInput(), nil
		}
	}
	return nil, fmt.Errorf("resolve %s: no user in the answer", to)
}

// importPhone finds a number by importing it as a contact.
func importPhone(ctx context.Context, api *tg.Client, phone string) (tg.InputUserClass, error) {
	res, err := api.ContactsImportContacts(ctx, []tg.InputPhoneContact{{ClientID: 1, Phone: phone, FirstName: phone}})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", phone, err)
	}
	for _, uc := range res.Users {
		if user, ok := uc.(*tg.User); ok {
			return user.AsInput(), nil
		}
	}
	return nil, fmt.Errorf("%s is not a Telegram user", phone)
}
