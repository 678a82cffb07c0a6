package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// object is a JSON object with its members undecoded.
type object map[string]json.RawMessage

// jsonKind returns the JSON type of a raw value by its first byte.
func jsonKind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; c {
	case '"', '{', '[', 'n':
		return c
	case 't', 'f':
		return 'b'
	default:
		return '0' // number
	}
}

func fieldError(name, want string) error {
	return fmt.Errorf("%w: %s must be %s", ErrMessage, name, want)
}

// str reads a string member; required members must be present.
func (o object) str(name string, required bool) (string, bool, error) {
	raw, ok := o[name]
	if !ok {
		if required {
			return "", false, fieldError(name, "a string")
		}
		return "", false, nil
	}
	var s string
	if jsonKind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, fieldError(name, "a string")
	}
	return s, true, nil
}

// boolean reads an optional boolean member.
func (o object) boolean(name string) (bool, bool, error) {
	raw, ok := o[name]
	if !ok {
		return false, false, nil
	}
	var b bool
	if jsonKind(raw) != 'b' || json.Unmarshal(raw, &b) != nil {
		return false, false, fieldError(name, "a bool")
	}
	return b, true, nil
}

// number reads a numeric member as an integer within [lo, hi]. json11
// stores numbers as doubles and tgcalls casts them; a fraction or an
// out-of-range value is rejected here instead of being truncated.
func (o object) number(name string, required bool, lo, hi float64) (int64, bool, error) {
	raw, ok := o[name]
	if !ok {
		if required {
			return 0, false, fieldError(name, "a number")
		}
		return 0, false, nil
	}
	v, err := numberValue(raw, lo, hi)
	if err != nil {
		return 0, false, fmt.Errorf("%w (%s)", err, name)
	}
	return v, true, nil
}

func numberValue(raw json.RawMessage, lo, hi float64) (int64, error) {
	if jsonKind(raw) != '0' {
		return 0, fmt.Errorf("%w: not a number", ErrMessage)
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || f != math.Trunc(f) || f < lo || f > hi {
		return 0, fmt.Errorf("%w: number %s out of range", ErrMessage, raw)
	}
	return int64(f), nil
}

// array reads an array member; each element is returned raw.
func (o object) array(name string, required bool) ([]json.RawMessage, bool, error) {
	raw, ok := o[name]
	if !ok {
		if required {
			return nil, false, fieldError(name, "an array")
		}
		return nil, false, nil
	}
	var items []json.RawMessage
	if jsonKind(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, false, fieldError(name, "an array")
	}
	return items, true, nil
}

// asObject decodes an array item that must be an object.
func asObject(raw json.RawMessage, what string) (object, error) {
	var o object
	if jsonKind(raw) != '{' || json.Unmarshal(raw, &o) != nil {
		return nil, fieldError(what+" items", "objects")
	}
	return o, nil
}

// uint32Value reads an SSRC or exchange id sent as a decimal string
// (tgcalls' own form) or a number (accepted by Signaling.cpp). tgcalls reads
// strings with a stringstream and takes 0 on garbage; a string that is not a
// plain decimal uint32 is an error here.
func uint32Value(raw json.RawMessage, name string) (uint32, error) {
	switch jsonKind(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fieldError(name, "a string or a number")
		}
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q is not a uint32", ErrMessage, name, s)
		}
		return uint32(v), nil
	case '0':
		v, err := numberValue(raw, 0, math.MaxUint32)
		if err != nil {
			return 0, fmt.Errorf("%w (%s)", err, name)
		}
		return uint32(v), nil
	default:
		return 0, fieldError(name, "a string or a number")
	}
}

// UnmarshalMessage parses a JSON signaling message and returns
// *InitialSetup, *Candidates, *NegotiateChannels or *MediaState, or an
// *UnknownMessageError for another "@type". Fields are checked as strictly
// as tgcalls v2/Signaling.cpp checks them (a missing or mistyped required
// field rejects the whole message); unknown keys are ignored.
func UnmarshalMessage(b []byte) (any, error) {
	var o object
	if err := json.Unmarshal(b, &o); err != nil || o == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMessage)
	}
	typ, _, err := o.str("@type", true)
	if err != nil {
		return nil, err
	}
	switch typ {
	case TypeInitialSetup:
		return parseInitialSetup(o)
	case TypeCandidates:
		return parseCandidates(o)
	case TypeNegotiateChannels:
		return parseNegotiateChannels(o)
	case TypeMediaState:
		return parseMediaState(o)
	default:
		return nil, &UnknownMessageError{Type: typ}
	}
}

// parseInitialSetup follows InitialSetupMessage_parse: ufrag, pwd and
// fingerprints are required; a non-bool renomination is ignored.
func parseInitialSetup(o object) (*InitialSetup, error) {
	var m InitialSetup
	var err error
	if m.Ufrag, _, err = o.str("ufrag", true); err != nil {
		return nil, err
	}
	if m.Pwd, _, err = o.str("pwd", true); err != nil {
		return nil, err
	}
	if b, ok, err := o.boolean("renomination"); err == nil && ok {
		m.Renomination = b
	}
	items, _, err := o.array("fingerprints", true)
	if err != nil {
		return nil, err
	}
	for _, raw := range items {
		fo, err := asObject(raw, "fingerprints")
		if err != nil {
			return nil, err
		}
		var f Fingerprint
		if f.Hash, _, err = fo.str("hash", true); err != nil {
			return nil, err
		}
		if f.Setup, _, err = fo.str("setup", true); err != nil {
			return nil, err
		}
		if f.Fingerprint, _, err = fo.str("fingerprint", true); err != nil {
			return nil, err
		}
		m.Fingerprints = append(m.Fingerprints, f)
	}
	return &m, nil
}

// parseCandidates follows CandidatesMessage_parse: sdpString is required.
// sdpMid and sdpMLineIndex are kept when they have the expected type and
// ignored otherwise, as tgcalls ignores them altogether.
func parseCandidates(o object) (*Candidates, error) {
	items, _, err := o.array("candidates", true)
	if err != nil {
		return nil, err
	}
	m := &Candidates{Candidates: make([]Candidate, 0, len(items))}
	for _, raw := range items {
		co, err := asObject(raw, "candidates")
		if err != nil {
			return nil, err
		}
		var c Candidate
		if c.SDPString, _, err = co.str("sdpString", true); err != nil {
			return nil, err
		}
		if mid, ok, err := co.str("sdpMid", false); err == nil && ok {
			c.SDPMid = mid
		}
		if idx, ok, err := co.number("sdpMLineIndex", false, 0, math.MaxInt32); err == nil && ok {
			i := int(idx)
			c.SDPMLineIndex = &i
		}
		m.Candidates = append(m.Candidates, c)
	}
	return m, nil
}

// parseNegotiateChannels follows NegotiateChannelsMessage_parse:
// exchangeId is required (string or number), contents optional.
func parseNegotiateChannels(o object) (*NegotiateChannels, error) {
	raw, ok := o["exchangeId"]
	if !ok {
		return nil, fieldError("exchangeId", "present")
	}
	id, err := uint32Value(raw, "exchangeId")
	if err != nil {
		return nil, err
	}
	m := &NegotiateChannels{ExchangeID: id}
	items, _, err := o.array("contents", false)
	if err != nil {
		return nil, err
	}
	for _, raw := range items {
		co, err := asObject(raw, "contents")
		if err != nil {
			return nil, err
		}
		c, err := parseContent(co)
		if err != nil {
			return nil, err
		}
		m.Contents = append(m.Contents, c)
	}
	return m, nil
}

// parseContent follows MediaContent_parse: type must be audio or video,
// ssrc is required; ssrcGroups, payloadTypes and rtpExtensions are optional
// but every item must parse.
func parseContent(o object) (Content, error) {
	var c Content
	var err error
	if c.Type, _, err = o.str("type", true); err != nil {
		return c, err
	}
	if c.Type != MediaAudio && c.Type != MediaVideo {
		return c, fmt.Errorf("%w: content type %q", ErrMessage, c.Type)
	}
	raw, ok := o["ssrc"]
	if !ok {
		return c, fieldError("ssrc", "present")
	}
	if c.SSRC, err = uint32Value(raw, "ssrc"); err != nil {
		return c, err
	}

	groups, _, err := o.array("ssrcGroups", false)
	if err != nil {
		return c, err
	}
	for _, raw := range groups {
		g, err := parseSSRCGroup(raw)
		if err != nil {
			return c, err
		}
		c.SSRCGroups = append(c.SSRCGroups, g)
	}

	pts, _, err := o.array("payloadTypes", false)
	if err != nil {
		return c, err
	}
	for _, raw := range pts {
		p, err := parsePayloadType(raw)
		if err != nil {
			return c, err
		}
		c.PayloadTypes = append(c.PayloadTypes, p)
	}

	exts, _, err := o.array("rtpExtensions", false)
	if err != nil {
		return c, err
	}
	for _, raw := range exts {
		eo, err := asObject(raw, "rtpExtensions")
		if err != nil {
			return c, err
		}
		id, _, err := eo.number("id", true, math.MinInt32, math.MaxInt32)
		if err != nil {
			return c, err
		}
		uri, _, err := eo.str("uri", true)
		if err != nil {
			return c, err
		}
		c.RTPExtensions = append(c.RTPExtensions, RTPExtension{ID: int(id), URI: uri})
	}
	return c, nil
}

// parseSSRCGroup follows SsrcGroup_parse (tgcalls v2/Signaling.cpp):
// semantics and ssrcs required; a string SSRC of 0 is rejected, a number is
// taken as it is, 0 included (MarshalMessage writes such a 0 back as a
// number).
func parseSSRCGroup(raw json.RawMessage) (SSRCGroup, error) {
	var g SSRCGroup
	o, err := asObject(raw, "ssrcGroups")
	if err != nil {
		return g, err
	}
	if g.Semantics, _, err = o.str("semantics", true); err != nil {
		return g, err
	}
	items, _, err := o.array("ssrcs", true)
	if err != nil {
		return g, err
	}
	for _, item := range items {
		s, err := uint32Value(item, "ssrcs item")
		if err != nil {
			return g, err
		}
		if s == 0 && jsonKind(item) == '"' {
			return g, fmt.Errorf("%w: ssrcs item must not be 0", ErrMessage)
		}
		g.SSRCs = append(g.SSRCs, s)
	}
	return g, nil
}

// parsePayloadType follows PayloadType_parse: id, name and clockrate
// required; channels, feedbackTypes (each with type and subtype) and
// parameters (string values) optional.
func parsePayloadType(raw json.RawMessage) (PayloadType, error) {
	var p PayloadType
	o, err := asObject(raw, "payloadTypes")
	if err != nil {
		return p, err
	}
	id, _, err := o.number("id", true, 0, math.MaxUint8)
	if err != nil {
		return p, err
	}
	p.ID = uint8(id)
	if p.Name, _, err = o.str("name", true); err != nil {
		return p, err
	}
	rate, _, err := o.number("clockrate", true, 0, math.MaxUint32)
	if err != nil {
		return p, err
	}
	p.ClockRate = uint32(rate)
	ch, _, err := o.number("channels", false, 0, math.MaxUint32)
	if err != nil {
		return p, err
	}
	p.Channels = uint32(ch)

	fbs, _, err := o.array("feedbackTypes", false)
	if err != nil {
		return p, err
	}
	for _, raw := range fbs {
		fo, err := asObject(raw, "feedbackTypes")
		if err != nil {
			return p, err
		}
		var f FeedbackType
		if f.Type, _, err = fo.str("type", true); err != nil {
			return p, err
		}
		if f.Subtype, _, err = fo.str("subtype", true); err != nil {
			return p, err
		}
		p.FeedbackTypes = append(p.FeedbackTypes, f)
	}

	if raw, ok := o["parameters"]; ok {
		var params map[string]json.RawMessage
		if jsonKind(raw) != '{' || json.Unmarshal(raw, &params) != nil {
			return p, fieldError("parameters", "an object")
		}
		// An empty object leaves Parameters nil, as when it is absent
		// (MarshalMessage writes {} for both), so a parsed message
		// marshals and parses back to the same value.
		if len(params) > 0 {
			p.Parameters = make(map[string]string, len(params))
		}
		for k, v := range params {
			var s string
			if jsonKind(v) != '"' || json.Unmarshal(v, &s) != nil {
				return p, fieldError("parameters items", "strings")
			}
			p.Parameters[k] = s
		}
	}
	return p, nil
}

// parseMediaState follows MediaStateMessage_parse: every field is optional
// but must have its type when present. Unknown state names fall back to
// inactive, as in tgcalls. tgcalls reads the rotation through the
// videoState entry by mistake (so it always sees 0); the videoRotation
// value itself is used here, with values other than 0/90/180/270 read as 0.
func parseMediaState(o object) (*MediaState, error) {
	m := &MediaState{VideoState: VideoInactive, ScreencastState: VideoInactive}
	var err error
	if m.Muted, _, err = o.boolean("muted"); err != nil {
		return nil, err
	}
	if m.LowBattery, _, err = o.boolean("lowBattery"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"videoState", &m.VideoState}, {"screencastState", &m.ScreencastState}} {
		s, ok, err := o.str(f.name, false)
		if err != nil {
			return nil, err
		}
		if ok && (s == VideoInactive || s == VideoSuspended || s == VideoActive) {
			*f.dst = s
		}
	}
	if raw, ok := o["videoRotation"]; ok {
		if jsonKind(raw) != '0' {
			return nil, fieldError("videoRotation", "a number")
		}
		if r, err := numberValue(raw, 0, 270); err == nil && r%90 == 0 {
			m.VideoRotation = int(r)
		}
	}
	return m, nil
}
