package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/config"
)

// TestMediaOptionsFromConfig: every setting of the media section reaches
// the calls' media bridge (jitter and fill_after were once dropped).
func TestMediaOptionsFromConfig(t *testing.T) {
	c := config.Default()
	c.Media.Jitter.Min = 30 * time.Millisecond
	c.Media.Jitter.Max = 250 * time.Millisecond
	c.Media.FillAfter = 3 * time.Second
	c.Media.Timeout = 45 * time.Second
	c.Media.DTMF.RenderInband = true
	c.Media.Opus.Bitrate = 24000
	m := mediaOptions(&c, slog.New(slog.DiscardHandler))
	if m.Jitter.Min != c.Media.Jitter.Min || m.Jitter.Max != c.Media.Jitter.Max {
		t.Errorf("jitter = %+v, want %+v", m.Jitter, c.Media.Jitter)
	}
	if m.FillAfter != 3*time.Second || m.MediaTimeout != 45*time.Second {
		t.Errorf("fill_after %v, timeout %v", m.FillAfter, m.MediaTimeout)
	}
	if !m.RenderDTMF || m.DetectDTMF || m.Opus.Bitrate != 24000 {
		t.Errorf("dtmf %v/%v, opus %+v", m.RenderDTMF, m.DetectDTMF, m.Opus)
	}
}
