package config

import (
	"io"
	"log/slog"

	"github.com/tgsip/tgsip/b2bua"
	"github.com/tgsip/tgsip/rtpbridge"
)

// Handler returns the slog handler the log section asks for, writing to w.
func (l Log) Handler(w io.Writer) slog.Handler {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Bridge returns the media settings as an rtpbridge.Config; the call
// fills in its legs and callbacks.
func (m Media) Bridge() rtpbridge.Config {
	return rtpbridge.Config{
		Jitter:       rtpbridge.JitterConfig{Min: m.Jitter.Min, Max: m.Jitter.Max},
		MediaTimeout: m.Timeout,
		FillAfter:    m.FillAfter,
		RenderDTMF:   m.DTMF.RenderInband,
		DetectDTMF:   m.DTMF.DetectInband,
	}
}

// PoolOptions returns the account pool's settings.
func (t Telegram) PoolOptions() b2bua.PoolOptions {
	return b2bua.PoolOptions{RetryAfter: t.RetryAfter, PeerFloodBackOff: t.PeerFloodBackOff}
}

// CodecComplexity is Complexity as rtpbridge/codec.Options spells it:
// there 0 means the default and a negative value libopus complexity 0.
func (o Opus) CodecComplexity() int {
	if o.Complexity == 0 {
		return -1
	}
	return o.Complexity
}

// CodecPacketLoss is PacketLossPercent as rtpbridge/codec.Options spells
// it: there 0 means the default and a negative value no FEC.
func (o Opus) CodecPacketLoss() int {
	if o.PacketLossPercent == 0 {
		return -1
	}
	return o.PacketLossPercent
}
