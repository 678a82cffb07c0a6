package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Message type names, the "@type" of each JSON signaling message
// (tgcalls v2/Signaling.cpp).
const (
	TypeInitialSetup      = "InitialSetup"
	TypeCandidates        = "Candidates"
	TypeNegotiateChannels = "NegotiateChannels"
	TypeMediaState        = "MediaState"
)

// Values of Content.Type.
const (
	MediaAudio = "audio"
	MediaVideo = "video"
)

// Values of MediaState.VideoState and ScreencastState.
const (
	VideoInactive  = "inactive"
	VideoSuspended = "suspended"
	VideoActive    = "active"
)

// InitialSetup carries the ICE credentials and DTLS fingerprints; the caller
// sends it first with setup "actpass", the callee answers with "passive".
type InitialSetup struct {
	Ufrag        string
	Pwd          string
	Renomination bool
	Fingerprints []Fingerprint
}

// Fingerprint is one DTLS certificate fingerprint of InitialSetup.
type Fingerprint struct {
	Hash        string // "sha-256"
	Setup       string // "actpass", "active" or "passive"
	Fingerprint string // "AB:CD:…"
}

// Candidates carries trickled ICE candidates.
type Candidates struct {
	Candidates []Candidate
}

// Candidate is one ICE candidate as an SDP attribute value
// ("candidate:… typ host …"). SDPMid and SDPMLineIndex are sent by some
// newer peers (ntgcalls); tgcalls ignores them, they are kept when present
// and sent only when set.
type Candidate struct {
	SDPString     string
	SDPMid        string
	SDPMLineIndex *int
}

// NegotiateChannels is an offer or answer of media channels (tgcalls
// v2/ContentNegotiation.cpp): an answer repeats the offer's ExchangeID.
type NegotiateChannels struct {
	ExchangeID uint32
	Contents   []Content
}

// Content is one media channel of NegotiateChannels.
type Content struct {
	Type          string // MediaAudio or MediaVideo
	SSRC          uint32
	SSRCGroups    []SSRCGroup
	PayloadTypes  []PayloadType
	RTPExtensions []RTPExtension
}

// SSRCGroup is an SSRC group such as "FID" (RTX) or "SIM".
type SSRCGroup struct {
	Semantics string
	SSRCs     []uint32
}

// PayloadType is one RTP codec of a Content.
type PayloadType struct {
	ID            uint8
	Name          string
	ClockRate     uint32
	Channels      uint32
	FeedbackTypes []FeedbackType
	Parameters    map[string]string
}

// FeedbackType is one RTCP feedback entry; tgcalls rejects the whole
// message when subtype is missing, so it is always sent, empty or not.
type FeedbackType struct {
	Type    string
	Subtype string
}

// RTPExtension is one RTP header extension.
type RTPExtension struct {
	ID  int
	URI string
}

// MediaState tells the peer about mute, battery and video; an audio-only
// side sends VideoState VideoInactive.
type MediaState struct {
	Muted           bool
	LowBattery      bool
	VideoState      string
	VideoRotation   int
	ScreencastState string
}

// UnknownMessageError is returned by UnmarshalMessage for a well-formed
// message whose "@type" this package does not know; tgcalls logs and drops
// such messages.
type UnknownMessageError struct {
	Type string
}

func (e *UnknownMessageError) Error() string {
	return fmt.Sprintf("wire: unknown signaling message type %q", e.Type)
}

// ErrMessage reports a signaling message that is not valid JSON or misses or
// mistypes a field tgcalls requires.
var ErrMessage = errors.New("wire: invalid signaling message")

// The *JSON types fix the serialized form: fields in the lexicographic key
// order of tgcalls' json11 objects (std::map), empty arrays and objects
// where tgcalls always writes them, SSRCs and exchangeId as decimal strings
// (Signaling.cpp uint32ToString).
type (
	fingerprintJSON struct {
		Fingerprint string `json:"fingerprint"`
		Hash        string `json:"hash"`
		Setup       string `json:"setup"`
	}
	initialSetupJSON struct {
		Type         string            `json:"@type"`
		Fingerprints []fingerprintJSON `json:"fingerprints"`
		Pwd          string            `json:"pwd"`
		Renomination bool              `json:"renomination"`
		Ufrag        string            `json:"ufrag"`
	}
	candidateJSON struct {
		SDPMLineIndex *int   `json:"sdpMLineIndex,omitempty"`
		SDPMid        string `json:"sdpMid,omitempty"`
		SDPString     string `json:"sdpString"`
	}
	candidatesJSON struct {
		Type       string          `json:"@type"`
		Candidates []candidateJSON `json:"candidates"`
	}
	feedbackTypeJSON struct {
		Subtype string `json:"subtype"`
		Type    string `json:"type"`
	}
	payloadTypeJSON struct {
		Channels      uint32             `json:"channels"`
		ClockRate     uint32             `json:"clockrate"`
		FeedbackTypes []feedbackTypeJSON `json:"feedbackTypes"`
		ID            int                `json:"id"`
		Name          string             `json:"name"`
		Parameters    map[string]string  `json:"parameters"`
	}
	rtpExtensionJSON struct {
		ID  int    `json:"id"`
		URI string `json:"uri"`
	}
	ssrcGroupJSON struct {
		Semantics string `json:"semantics"`
		SSRCs     []any  `json:"ssrcs"` // string, or the number 0 (see marshalNegotiateChannels)
	}
	contentJSON struct {
		PayloadTypes  []payloadTypeJSON  `json:"payloadTypes,omitempty"`
		RTPExtensions []rtpExtensionJSON `json:"rtpExtensions"`
		SSRC          string             `json:"ssrc"`
		SSRCGroups    []ssrcGroupJSON    `json:"ssrcGroups,omitempty"`
		Type          string             `json:"type"`
	}
	negotiateChannelsJSON struct {
		Type       string        `json:"@type"`
		Contents   []contentJSON `json:"contents"`
		ExchangeID string        `json:"exchangeId"`
	}
	mediaStateJSON struct {
		Type            string `json:"@type"`
		LowBattery      bool   `json:"lowBattery"`
		Muted           bool   `json:"muted"`
		ScreencastState string `json:"screencastState"`
		VideoRotation   int    `json:"videoRotation"`
		VideoState      string `json:"videoState"`
	}
)

// MarshalMessage serializes an InitialSetup, Candidates, NegotiateChannels
// or MediaState (value or pointer) as tgcalls v2/Signaling.cpp
// Message::serialize does, "@type" included.
func MarshalMessage(m any) ([]byte, error) {
	var v any
	switch m := m.(type) {
	case InitialSetup:
		v = initialSetupToJSON(&m)
	case *InitialSetup:
		v = initialSetupToJSON(m)
	case Candidates:
		v = candidatesToJSON(&m)
	case *Candidates:
		v = candidatesToJSON(m)
	case NegotiateChannels:
		return marshalNegotiateChannels(&m)
	case *NegotiateChannels:
		return marshalNegotiateChannels(m)
	case MediaState:
		return marshalMediaState(&m)
	case *MediaState:
		return marshalMediaState(m)
	default:
		return nil, fmt.Errorf("wire: cannot marshal %T as a signaling message", m)
	}
	return encodeJSON(v)
}

// encodeJSON writes compact JSON without HTML escaping, like json11 dump.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("wire: encode signaling message: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func initialSetupToJSON(m *InitialSetup) *initialSetupJSON {
	out := &initialSetupJSON{
		Type:         TypeInitialSetup,
		Fingerprints: make([]fingerprintJSON, 0, len(m.Fingerprints)),
		Pwd:          m.Pwd,
		Renomination: m.Renomination,
		Ufrag:        m.Ufrag,
	}
	for _, f := range m.Fingerprints {
		out.Fingerprints = append(out.Fingerprints, fingerprintJSON{Fingerprint: f.Fingerprint, Hash: f.Hash, Setup: f.Setup})
	}
	return out
}

func candidatesToJSON(m *Candidates) *candidatesJSON {
	out := &candidatesJSON{Type: TypeCandidates, Candidates: make([]candidateJSON, 0, len(m.Candidates))}
	for _, c := range m.Candidates {
		out.Candidates = append(out.Candidates, candidateJSON{
			SDPMLineIndex: c.SDPMLineIndex,
			SDPMid:        c.SDPMid,
			SDPString:     c.SDPString,
		})
	}
	return out
}

func marshalNegotiateChannels(m *NegotiateChannels) ([]byte, error) {
	out := &negotiateChannelsJSON{
		Type:       TypeNegotiateChannels,
		Contents:   make([]contentJSON, 0, len(m.Contents)),
		ExchangeID: strconv.FormatUint(uint64(m.ExchangeID), 10),
	}
	for _, c := range m.Contents {
		if c.Type != MediaAudio && c.Type != MediaVideo {
			// Signaling.cpp MediaContent_serialize aborts on other types.
			return nil, fmt.Errorf("%w: content type %q", ErrMessage, c.Type)
		}
		cj := contentJSON{
			RTPExtensions: make([]rtpExtensionJSON, 0, len(c.RTPExtensions)),
			SSRC:          strconv.FormatUint(uint64(c.SSRC), 10),
			Type:          c.Type,
		}
		for _, g := range c.SSRCGroups {
			gj := ssrcGroupJSON{Semantics: g.Semantics, SSRCs: make([]any, 0, len(g.SSRCs))}
			for _, s := range g.SSRCs {
				if s == 0 {
					// Signaling.cpp SsrcGroup_parse refuses the string "0"
					// but takes a number as it is, 0 included; so a 0 that
					// a peer sent (and that we echo in an answer) is
					// written as the number, which tgcalls and
					// UnmarshalMessage both read back as 0.
					gj.SSRCs = append(gj.SSRCs, 0)
					continue
				}
				gj.SSRCs = append(gj.SSRCs, strconv.FormatUint(uint64(s), 10))
			}
			cj.SSRCGroups = append(cj.SSRCGroups, gj)
		}
		for _, p := range c.PayloadTypes {
			pj := payloadTypeJSON{
				Channels:      p.Channels,
				ClockRate:     p.ClockRate,
				FeedbackTypes: make([]feedbackTypeJSON, 0, len(p.FeedbackTypes)),
				ID:            int(p.ID),
				Name:          p.Name,
				Parameters:    p.Parameters,
			}
			if pj.Parameters == nil {
				pj.Parameters = map[string]string{}
			}
			for _, f := range p.FeedbackTypes {
				pj.FeedbackTypes = append(pj.FeedbackTypes, feedbackTypeJSON{Subtype: f.Subtype, Type: f.Type})
			}
			cj.PayloadTypes = append(cj.PayloadTypes, pj)
		}
		for _, e := range c.RTPExtensions {
			cj.RTPExtensions = append(cj.RTPExtensions, rtpExtensionJSON(e))
		}
		out.Contents = append(out.Contents, cj)
	}
	return encodeJSON(out)
}

func marshalMediaState(m *MediaState) ([]byte, error) {
	video, ok := videoStateOut(m.VideoState)
	if !ok {
		return nil, fmt.Errorf("%w: videoState %q", ErrMessage, m.VideoState)
	}
	screencast, ok := videoStateOut(m.ScreencastState)
	if !ok {
		return nil, fmt.Errorf("%w: screencastState %q", ErrMessage, m.ScreencastState)
	}
	switch m.VideoRotation {
	case 0, 90, 180, 270:
	default:
		return nil, fmt.Errorf("%w: videoRotation %d", ErrMessage, m.VideoRotation)
	}
	// videoState is always written: tgcalls' parser looks videoRotation up
	// through the videoState entry (Signaling.cpp MediaStateMessage_parse).
	return encodeJSON(&mediaStateJSON{
		Type:            TypeMediaState,
		LowBattery:      m.LowBattery,
		Muted:           m.Muted,
		ScreencastState: screencast,
		VideoRotation:   m.VideoRotation,
		VideoState:      video,
	})
}

// videoStateOut maps a state for sending; the zero value means inactive.
func videoStateOut(s string) (string, bool) {
	switch s {
	case "":
		return VideoInactive, true
	case VideoInactive, VideoSuspended, VideoActive:
		return s, true
	default:
		return "", false
	}
}
