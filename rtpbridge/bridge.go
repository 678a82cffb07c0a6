package rtpbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Leg configures one side of a Bridge.
type Leg struct {
	// Endpoint is the leg's RTP.
	Endpoint Endpoint
	// Format is the leg's negotiated audio.
	Format Format
	// Decoder decodes what the leg sends and Encoder encodes what the
	// bridge sends toward it; both are needed when the bridge transcodes
	// (the legs' codecs differ). On a passthrough bridge, the Telegram
	// leg's Decoder serves DetectDTMF and its Encoder RenderDTMF; an
	// Encoder also makes the silence a NeedsPackets leg is filled with.
	Decoder Decoder
	Encoder Encoder
	// Resampler converts the other leg's decoded audio to this leg's
	// Encoder rate; needed only when those rates differ.
	Resampler Resampler
	// NeedsPackets says the leg expects a steady stream (a PBX with an
	// RTP timeout): when the other leg falls silent for FillAfter, the
	// bridge sends silence toward this leg until it speaks again.
	NeedsPackets bool
}

// Config is a Bridge's configuration.
type Config struct {
	SIP, Telegram Leg
	// Jitter bounds the jitter buffer of a transcoding bridge.
	Jitter JitterConfig
	// MediaTimeout ends the bridge with a *MediaTimeoutError when a leg
	// sends no RTP for this long (0 = never). It is paused while either leg
	// is held and, for a leg, while it is remote-muted.
	MediaTimeout time.Duration
	// FillAfter is how long a leg may be silent before the bridge sends
	// silence toward a NeedsPackets leg (default 1 s).
	FillAfter time.Duration
	// RenderDTMF renders RFC 4733 events from the SIP leg as in-band tones
	// toward Telegram (whose users have no keypad to see them on). A
	// passthrough bridge needs the Telegram Leg's Encoder for it.
	RenderDTMF bool
	// DetectDTMF detects DTMF tones in the Telegram leg's audio and sends
	// them to the SIP leg as RFC 4733 events instead of audio (so a
	// Telegram user who plays tones can drive an IVR). Off by default;
	// needs telephone-event on the SIP leg, and on a passthrough bridge the
	// Telegram Leg's Decoder.
	DetectDTMF bool
	// Watch, if set, lets the owner follow events of its own (say, the
	// Telegram peer's MediaState) on Run's goroutine instead of a
	// goroutine per call: Run calls it when it starts and again each
	// time the channel it returned last is closed, and waits on the
	// channel it returns (nil: no more). It must not block.
	Watch func() <-chan struct{}
	// LossFloor is the least loss, in percent, the Telegram leg's
	// encoder is told to expect when the bridge drives its loss hint
	// from the Telegram peer's reports (see adaptLoss); 0 lets the hint
	// fall to the reported loss, down to none.
	LossFloor int
	// OnDTMF receives every telephone event, from the goroutine of the
	// direction it came from; it must not block.
	OnDTMF func(DTMFEvent)
	// OnTelegramMuted is told when SetHeld puts the Telegram leg on hold
	// or takes it off: the owner tells the Telegram peer it is muted
	// (tgcalls has no hold; MediaState muted is what it shows).
	OnTelegramMuted func(muted bool)
	// Logger, nil for slog.Default().
	Logger *slog.Logger
}

// Bridge relays the audio of one call between its SIP leg and its
// Telegram leg: passthrough when both speak Opus, else transcoding. See
// the package documentation.
type Bridge struct {
	cfg         Config
	log         *slog.Logger
	epoch       time.Time
	legs        [2]*legState
	dirs        [2]*direction // by source leg
	passthrough bool
	fillAfter   time.Duration
	ran         atomic.Bool
	// The Telegram encoder's loss hint, driven by the Telegram peer's
	// reports (both nil when a leg lacks the interface).
	lossRep  LossReporter
	lossEnc  LossAdapter
	lossHint int // last hint set, -1 before the first
}

type legState struct {
	Leg
	id           LegID
	held, muted  atomic.Bool
	lastRx       atomic.Int64 // bridge time of the last RTP received
	counters     *dirCounters // of the direction out of this leg
	silence      []byte       // payload of one fill packet toward this leg
	silenceTicks uint32
}

// New checks cfg and makes a Bridge; Run starts it.
func New(cfg Config) (*Bridge, error) {
	b := &Bridge{cfg: cfg, log: cfg.Logger, epoch: time.Now(), fillAfter: cfg.FillAfter}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.fillAfter <= 0 {
		b.fillAfter = time.Second
	}
	for i, l := range []Leg{cfg.SIP, cfg.Telegram} {
		id := LegID(i)
		if l.Endpoint == nil {
			return nil, fmt.Errorf("rtpbridge: %s leg has no endpoint", id)
		}
		if err := l.Format.validate(); err != nil {
			return nil, fmt.Errorf("rtpbridge: %s leg: %w", id, err)
		}
		b.legs[i] = &legState{Leg: l, id: id, counters: new(dirCounters)}
	}
	b.passthrough = cfg.SIP.Format.IsOpus() && cfg.Telegram.Format.IsOpus()
	if !b.passthrough {
		if err := b.checkCodecs(); err != nil {
			return nil, err
		}
	}
	for _, l := range b.legs {
		if err := b.makeSilence(l); err != nil {
			return nil, err
		}
	}
	rep, okRep := cfg.Telegram.Endpoint.(LossReporter)
	enc, okEnc := cfg.Telegram.Encoder.(LossAdapter)
	if okRep && okEnc {
		b.lossRep, b.lossEnc, b.lossHint = rep, enc, -1
	}
	for i := range b.dirs {
		src, dst := b.legs[i], b.legs[1-i]
		d, err := newDirection(b, src, dst)
		if err != nil {
			return nil, err
		}
		b.dirs[i] = d
	}
	return b, nil
}

func (b *Bridge) checkCodecs() error {
	for _, l := range b.legs {
		if l.Decoder == nil || l.Encoder == nil {
			return fmt.Errorf("rtpbridge: %s leg: transcoding %s needs a decoder and an encoder", l.id, l.Format.Codec)
		}
	}
	for i, dst := range b.legs {
		src := b.legs[1-i]
		in, out := src.Decoder.SampleRate(), dst.Encoder.SampleRate()
		if in <= 0 || out <= 0 {
			return fmt.Errorf("rtpbridge: bad sample rates %d -> %d", in, out)
		}
		if in != out && dst.Resampler == nil {
			return fmt.Errorf("rtpbridge: toward the %s leg: %d Hz -> %d Hz needs a resampler", dst.id, in, out)
		}
		if out*int(dst.Format.ptime()/time.Millisecond)%1000 != 0 {
			return fmt.Errorf("rtpbridge: toward the %s leg: ptime %v is not whole samples at %d Hz", dst.id, dst.Format.ptime(), out)
		}
	}
	return nil
}

// opusSilence is a 20 ms Opus packet that decodes to silence (TOC 0xF8:
// CELT-only fullband 20 ms, mono, one frame, RFC 6716 §3.1), the frame
// WebRTC stacks send for muted audio.
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// makeSilence prepares the payload the bridge fills a NeedsPackets leg
// with: a frame of the leg's encoder over zeros, or for Opus without an
// encoder the 20 ms silence packet.
func (b *Bridge) makeSilence(l *legState) error {
	switch {
	case l.Encoder != nil:
		n := l.Encoder.SampleRate() * int(l.Format.ptime()/time.Millisecond) / 1000
		out := make([]byte, 1500)
		m, err := l.Encoder.Encode(make([]int16, n), out)
		if err != nil {
			return fmt.Errorf("rtpbridge: %s leg: encode silence: %w", l.id, err)
		}
		l.silence, l.silenceTicks = out[:m], l.Format.samples(l.Format.ptime())
	case l.Format.IsOpus():
		l.silence, l.silenceTicks = opusSilence, l.Format.samples(20*time.Millisecond)
	}
	return nil
}

// Passthrough says whether the bridge relays payloads untouched.
func (b *Bridge) Passthrough() bool { return b.passthrough }

func (b *Bridge) now() time.Duration { return time.Since(b.epoch) }

// Run relays media until ctx ends (it returns ctx's error), a leg's
// Endpoint fails (*EndpointError) or a leg times out
// (*MediaTimeoutError). Before it returns it stops reading both
// Endpoints (see Endpoint) and waits for its goroutines. Run may be
// called once.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.ran.CompareAndSwap(false, true) {
		return errors.New("rtpbridge: Run called twice")
	}
	now := b.now()
	for _, l := range b.legs {
		l.lastRx.Store(int64(now))
	}
	var (
		once  sync.Once
		cause error
		done  = make(chan struct{})
	)
	end := func(err error) {
		once.Do(func() {
			cause = err
			close(done)
		})
	}
	for _, d := range b.dirs {
		d.stopC = done
	}
	// Passthrough directions out of a Pusher are handled on the source's
	// own receiving goroutine; their goroutine here only waits in ReadRTP
	// for the source's end.
	var stops []func()
	for _, d := range b.dirs {
		if p := d.pusher(); p != nil {
			stops = append(stops, p.PushRTP(d.deliver))
			d.pushing = true
		}
	}
	var wg sync.WaitGroup
	for _, d := range b.dirs {
		wg.Go(func() {
			if err := d.run(done); err != nil {
				end(err)
			}
		})
	}
	// The supervisor sleeps for good when it has nothing to watch.
	timer := time.NewTimer(b.period(false))
	defer timer.Stop()
	tick := timer.C
	if b.cfg.MediaTimeout <= 0 && !b.legs[0].NeedsPackets && !b.legs[1].NeedsPackets && b.lossRep == nil {
		tick = nil
	}
	var watch <-chan struct{}
	if b.cfg.Watch != nil {
		watch = b.cfg.Watch()
	}
	for stop := false; !stop; {
		select {
		case <-ctx.Done():
			end(ctx.Err())
			stop = true
		case <-done:
			stop = true
		case <-tick:
			timer.Reset(b.period(b.supervise(end)))
		case <-watch:
			watch = b.cfg.Watch()
		}
	}
	for _, stop := range stops {
		stop()
	}
	for _, l := range b.legs {
		stopReading(l.Endpoint)
	}
	wg.Wait()
	return cause
}

// stopReading unblocks an Endpoint's ReadRTP (see Endpoint).
func stopReading(e Endpoint) {
	if d, ok := e.(interface{ SetReadDeadline(time.Time) error }); ok {
		if d.SetReadDeadline(time.Unix(1, 0)) == nil {
			return
		}
	}
	if c, ok := e.(io.Closer); ok {
		// The error of a close at the end of the bridge changes nothing.
		_ = c.Close()
	}
}

// period is how long the supervisor sleeps: one ptime while it fills
// silence, else a fraction of the fill and media timeouts (at most 1 s),
// one wake-up per call rather than a timer per packet.
func (b *Bridge) period(filling bool) time.Duration {
	if filling {
		return 20 * time.Millisecond
	}
	p := min(time.Second, b.fillAfter)
	if b.cfg.MediaTimeout > 0 {
		p = min(p, max(b.cfg.MediaTimeout/4, 10*time.Millisecond))
	}
	return p
}

// supervise checks the media timeout and fills silence; it says whether
// it is filling.
func (b *Bridge) supervise(end func(error)) (filling bool) {
	now := b.now()
	held := b.legs[0].held.Load() || b.legs[1].held.Load()
	if b.cfg.MediaTimeout > 0 && !held {
		for _, l := range b.legs {
			if l.muted.Load() {
				continue
			}
			if idle := now - time.Duration(l.lastRx.Load()); idle >= b.cfg.MediaTimeout {
				end(&MediaTimeoutError{Leg: l.id, Idle: idle})
				return false
			}
		}
	}
	for _, d := range b.dirs {
		if d.fill(now) {
			filling = true
		}
	}
	b.adaptLoss()
	return filling
}

// adaptLoss tells the Telegram leg's encoder the loss the Telegram peer
// reports on our stream, so that Opus sizes its in-band FEC (LBRR) for
// it. tgcalls runs WebRTC's Opus encoder, which is fed the uplink loss
// from the receiver's RTCP reports the same way
// (webrtc modules/audio_coding/codecs/opus/audio_encoder_opus.cc,
// OnReceivedUplinkPacketLossFraction → SetProjectedPacketLossRate). The
// percentage is rounded up so that any reported loss keeps some FEC, and
// never below cfg.LossFloor. Called from the supervisor at most once per
// second (reports come every few seconds, RFC 3550 §6.2); the encoder is
// used under the SIP → Telegram direction's lock.
func (b *Bridge) adaptLoss() {
	if b.lossRep == nil {
		return
	}
	frac, ok := b.lossRep.RemoteFractionLost()
	if !ok {
		return
	}
	p := max((int(frac)*100+255)/256, b.cfg.LossFloor)
	p = min(p, 100)
	if p == b.lossHint {
		return
	}
	d := b.dirs[LegSIP]
	d.mu.Lock()
	err := b.lossEnc.SetPacketLossPercent(p)
	d.mu.Unlock()
	if err != nil {
		b.log.Debug("rtpbridge: loss hint", "percent", p, "err", err)
		return
	}
	b.lossHint = p
	b.legs[LegSIP].counters.lossHint.Store(int32(p)) // SIP → Telegram
}

// SetHeld puts a leg on hold (nothing is sent toward it) or takes it off.
// Holding the Telegram leg is reported to OnTelegramMuted.
func (b *Bridge) SetHeld(leg LegID, held bool) {
	l := b.legs[leg]
	if l.held.Swap(held) == held {
		return
	}
	if !held {
		// The media timeout restarts, and the stream toward the leg
		// resumes with a timestamp jump over the hold.
		now := int64(b.now())
		for _, o := range b.legs {
			o.lastRx.Store(now)
		}
		b.dirs[1-leg].resync()
	}
	if leg == LegTelegram && b.cfg.OnTelegramMuted != nil {
		b.cfg.OnTelegramMuted(held)
	}
}

// SetRemoteMuted records that a leg's peer said it is muted (Telegram's
// MediaState): its silence is then expected and does not time out.
func (b *Bridge) SetRemoteMuted(leg LegID, muted bool) {
	l := b.legs[leg]
	if l.muted.Swap(muted) && !muted {
		l.lastRx.Store(int64(b.now()))
	}
}

// RemoteMuted says whether SetRemoteMuted last marked the leg muted.
func (b *Bridge) RemoteMuted(leg LegID) bool { return b.legs[leg].muted.Load() }

// SetRTT records a leg's round-trip time from its RTCP (for Stats and
// the MOS estimate).
func (b *Bridge) SetRTT(leg LegID, rtt time.Duration) {
	b.legs[leg].counters.rttNS.Store(int64(rtt))
}

// Stats returns the call's counters.
func (b *Bridge) Stats() Stats {
	s := [2]DirectionStats{}
	for i, d := range b.dirs {
		s[i] = d.c.snapshot()
		s[i].MOS = d.c.mos(s[i], d.dst.counters, d.out.ptime(), d.out.Codec)
	}
	return Stats{SIPToTelegram: s[LegSIP], TelegramToSIP: s[LegTelegram]}
}
