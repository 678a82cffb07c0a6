//go:build opusknobs

package codec

// A libopus encoder with every setting reachable, for
// BenchmarkOpusKnobs only (build tag opusknobs): gopkg.in/hraban/opus.v2,
// which the codecs use, exposes no OPUS_SET_VBR, OPUS_SET_SIGNAL or
// OPUS_SET_LSB_DEPTH. Not part of the normal build.

/*
#cgo pkg-config: opus
#include <opus.h>

static OpusEncoder *knobs_encoder(int rate, int app, int cx, int bitrate, int vbr,
		int fec, int loss, int signal, int lsb, int maxbw, int dtx, int *err) {
	OpusEncoder *e = opus_encoder_create(rate, 1, app, err);
	if (e == NULL) return NULL;
	if (opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(cx)) != OPUS_OK ||
	    opus_encoder_ctl(e, OPUS_SET_BITRATE(bitrate)) != OPUS_OK ||
	    opus_encoder_ctl(e, OPUS_SET_VBR(vbr)) != OPUS_OK ||
	    opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(fec)) != OPUS_OK ||
	    opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(loss)) != OPUS_OK ||
	    opus_encoder_ctl(e, OPUS_SET_DTX(dtx)) != OPUS_OK ||
	    (signal && opus_encoder_ctl(e, OPUS_SET_SIGNAL(signal)) != OPUS_OK) ||
	    (lsb && opus_encoder_ctl(e, OPUS_SET_LSB_DEPTH(lsb)) != OPUS_OK) ||
	    (maxbw && opus_encoder_ctl(e, OPUS_SET_MAX_BANDWIDTH(maxbw)) != OPUS_OK)) {
		opus_encoder_destroy(e);
		*err = OPUS_BAD_ARG;
		return NULL;
	}
	return e;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// opusKnobs are the libopus encoder settings BenchmarkOpusKnobs varies.
type opusKnobs struct {
	rate, app, complexity, bitrate int
	vbr, fec, dtx                  bool
	loss, signal, lsbDepth, maxBW  int // 0: libopus's default
}

// libopus constants (opus_defines.h).
const (
	opusAppVoIP       = C.OPUS_APPLICATION_VOIP
	opusAppAudio      = C.OPUS_APPLICATION_AUDIO
	opusSignalVoice   = C.OPUS_SIGNAL_VOICE
	opusBandwidthNB   = C.OPUS_BANDWIDTH_NARROWBAND
	opusMaxPacketSize = 1275
)

type knobEncoder struct{ e *C.OpusEncoder }

func newKnobEncoder(k opusKnobs) (*knobEncoder, error) {
	b := func(v bool) C.int {
		if v {
			return 1
		}
		return 0
	}
	var cerr C.int
	e := C.knobs_encoder(C.int(k.rate), C.int(k.app), C.int(k.complexity), C.int(k.bitrate), b(k.vbr),
		b(k.fec), C.int(k.loss), C.int(k.signal), C.int(k.lsbDepth), C.int(k.maxBW), b(k.dtx), &cerr)
	if e == nil {
		return nil, fmt.Errorf("opus encoder: %s", C.GoString(C.opus_strerror(cerr)))
	}
	return &knobEncoder{e: e}, nil
}

func (k *knobEncoder) encode(pcm []int16, out []byte) (int, error) {
	n := C.opus_encode(k.e, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.opus_int32(min(len(out), opusMaxPacketSize)))
	if n < 0 {
		return 0, fmt.Errorf("opus encode: %s", C.GoString(C.opus_strerror(n)))
	}
	return int(n), nil
}

func (k *knobEncoder) close() { C.opus_encoder_destroy(k.e) }
