package sdp

import (
	"bytes"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"
)

// streamSpec is one m-line of an SDP we write.
type streamSpec struct {
	reject  bool     // port 0 (RFC 3264 §6); media, proto, formats mirror the offer
	media   string   // only for rejected lines; ours are "audio"
	formats []string // only for rejected lines
	proto   string
	codecs  []Codec
	dir     Direction
	rtcpMux bool
	crypto  []Crypto
}

// rejected mirrors an offered m-line we do not take: RFC 3264 §6 keeps it
// in place with port zero and at least one of its formats.
// Tokens are echoed only when printable, so hostile bytes never travel on.
func rejected(l *mline) streamSpec {
	var f []string
	for _, t := range l.formats {
		if isToken(t) {
			f = append(f, t)
		}
	}
	if len(f) == 0 {
		f = []string{"0"}
	}
	st := streamSpec{reject: true, media: l.media, proto: l.proto, formats: f}
	if !isToken(st.media) {
		st.media = "audio"
	}
	if !isToken(st.proto) {
		st.proto = "RTP/AVP"
	}
	return st
}

// isToken reports whether s is non-empty visible ASCII.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// emit renders our SDP. RFC 3264 §8: every changed description carries a
// version one higher than the previous one; an unchanged one (a session
// refresh, a repeated hold) may and here does keep its version, which
// spares peers a pointless media update.
func (s *Session) emit(streams []streamSpec) []byte {
	body := s.render(streams, s.version)
	if s.lastBody != nil && !bytes.Equal(body, s.lastBody) {
		s.version++
		body = s.render(streams, s.version)
	}
	s.lastBody = bytes.Clone(body)
	return body
}

// render writes the description with pion/sdp.
func (s *Session) render(streams []streamSpec, version uint64) []byte {
	addrType := "IP4"
	if s.cfg.Addr.Is6() {
		addrType = "IP6"
	}
	addr := s.cfg.Addr.String()
	sd := psdp.SessionDescription{
		Origin: psdp.Origin{
			Username:       s.cfg.Username,
			SessionID:      s.id,
			SessionVersion: version,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: addr,
		},
		SessionName: psdp.SessionName(s.cfg.SessionName),
		// RFC 8866 §5.7: one session-level c= covers every m-line.
		ConnectionInformation: &psdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType, Address: &psdp.Address{Address: addr},
		},
		// RFC 3264 §5: "t=0 0" for a session set up by SIP.
		TimeDescriptions:  []psdp.TimeDescription{{}},
		MediaDescriptions: make([]*psdp.MediaDescription, 0, len(streams)),
	}
	for _, st := range streams {
		md := &psdp.MediaDescription{MediaName: psdp.MediaName{
			Media:  "audio",
			Protos: strings.Split(st.proto, "/"),
		}}
		if st.reject {
			md.MediaName.Media = st.media
			md.MediaName.Formats = st.formats
			sd.MediaDescriptions = append(sd.MediaDescriptions, md)
			continue
		}
		md.MediaName.Port.Value = int(s.local.Port())
		attrs := make([]psdp.Attribute, 0, 2*len(st.codecs)+3+len(st.crypto))
		for _, c := range st.codecs {
			pt := strconv.Itoa(int(c.PayloadType))
			md.MediaName.Formats = append(md.MediaName.Formats, pt)
			attrs = append(attrs, psdp.NewAttribute("rtpmap", pt+" "+c.String()))
			if c.Fmtp != "" {
				attrs = append(attrs, psdp.NewAttribute("fmtp", pt+" "+c.Fmtp))
			}
		}
		attrs = append(attrs, psdp.NewAttribute("ptime", strconv.Itoa(s.cfg.PTime)))
		if st.rtcpMux {
			attrs = append(attrs, psdp.NewPropertyAttribute("rtcp-mux"))
		}
		for _, c := range st.crypto {
			attrs = append(attrs, psdp.NewAttribute("crypto", c.String()))
		}
		// Written even when sendrecv: some PBXs only notice resume
		// when the attribute is spelled out.
		attrs = append(attrs, psdp.NewPropertyAttribute(st.dir.String()))
		md.Attributes = attrs
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	b, err := sd.Marshal()
	if err != nil {
		// pion's Marshal has no failing path; an empty body would be
		// refused by the peer rather than misread.
		return nil
	}
	return b
}
