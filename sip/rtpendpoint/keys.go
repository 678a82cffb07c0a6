package rtpendpoint

import (
	"fmt"

	"github.com/pion/srtp/v3"

	"github.com/tgsip/tgsip/sip/sdp"
)

// replayWindow is the SRTP/SRTCP replay window in packets: RFC 3711 §3.3.2
// asks for at least 64; 128 tolerates the reordering seen on real networks
// (libsrtp's default is 128 as well).
const replayWindow = 128

// keyID identifies a master key for the "did the keys change" test of
// Update: profile, key, salt and MKI. It holds key bytes and is never
// printed or logged.
type keyID struct {
	profile        srtp.ProtectionProfile
	key, salt, mki string
}

// cryptoPair is the SRTP context and the SRTCP context of one master key in
// one direction. They are separate pion contexts (same key) so that the RTP
// path and the RTCP path never share a context: a pion Context is not safe
// for concurrent use, and the RTP path must not wait for RTCP.
type cryptoPair struct {
	id   keyID
	rtp  *srtp.Context // used only by ReadRTP (rx) or WriteRTP (tx)
	rtcp *srtp.Context // used only under Endpoint.rtcpRxMu / rtcpTxMu
	// overhead is the number of bytes SRTP adds to an RTP packet: auth tag,
	// AEAD tag and MKI.
	overhead int
}

// newCryptoPair makes the contexts of one direction. Receive contexts get
// replay protection (RFC 3711 §3.3.2); send contexts need none.
func newCryptoPair(profile srtp.ProtectionProfile, key, salt, mki []byte, receive bool) (*cryptoPair, error) {
	opts := []srtp.ContextOption{}
	if len(mki) > 0 {
		// pion/srtp takes the MKI length of both directions from the
		// context's own MKI, so the receive context carries the peer's.
		opts = append(opts, srtp.MasterKeyIndicator(mki))
	}
	if receive {
		opts = append(opts, srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	}
	rtpCtx, err := srtp.CreateContext(key, salt, profile, opts...)
	if err != nil {
		// pion's errors name lengths and profiles, never key bytes.
		return nil, fmt.Errorf("rtpendpoint: SRTP context for %s: %w", profile, err)
	}
	rtcpCtx, err := srtp.CreateContext(key, salt, profile, opts...)
	if err != nil {
		return nil, fmt.Errorf("rtpendpoint: SRTCP context for %s: %w", profile, err)
	}
	tag, err := profile.AuthTagRTPLen()
	if err != nil {
		return nil, fmt.Errorf("rtpendpoint: %s: %w", profile, err)
	}
	aead, err := profile.AEADAuthTagLen()
	if err != nil {
		return nil, fmt.Errorf("rtpendpoint: %s: %w", profile, err)
	}
	return &cryptoPair{
		id:       keyID{profile: profile, key: string(key), salt: string(salt), mki: string(mki)},
		rtp:      rtpCtx,
		rtcp:     rtcpCtx,
		overhead: tag + aead + len(mki),
	}, nil
}

// keysFor returns the contexts of one direction for k, reusing have when
// the key is unchanged (so its rollover counter and replay window carry
// on, RFC 3711 §3.2.1: a crypto context lives as long as its master key).
// A nil k means plain RTP: nil is returned.
func keysFor(k *sdp.SRTPKeys, receive bool, have *cryptoPair) (*cryptoPair, error) {
	if k == nil {
		return nil, nil
	}
	key, salt, mki := k.LocalKey, k.LocalSalt, k.LocalMKI
	if receive {
		key, salt, mki = k.RemoteKey, k.RemoteSalt, k.RemoteMKI
	}
	id := keyID{profile: k.Profile, key: string(key), salt: string(salt), mki: string(mki)}
	if have != nil && have.id == id {
		return have, nil
	}
	return newCryptoPair(k.Profile, key, salt, mki, receive)
}
