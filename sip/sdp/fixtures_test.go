package sdp

import "strings"

// Offers shaped like what real PBXs and phones send (written for these
// tests; addresses from the documentation ranges).

// crlf turns a readable multi-line literal into an SDP body.
func crlf(s string) []byte {
	s = strings.TrimLeft(s, "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// asteriskOffer: chan_pjsip with allow=ulaw,alaw,g722 and RFC 4733 DTMF.
var asteriskOffer = crlf(`
v=0
o=- 1183705721 1183705723 IN IP4 203.0.113.10
s=Asterisk
c=IN IP4 203.0.113.10
t=0 0
m=audio 14562 RTP/AVP 0 8 9 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
`)

// freeswitchSAVPOffer: a FreeSWITCH profile with rtp_secure_media and
// opus enabled; AES_256 before AES_CM_128, CN offered, explicit a=rtcp.
var freeswitchSAVPOffer = crlf(`
v=0
o=FreeSWITCH 1709312000 1709312001 IN IP4 198.51.100.7
s=FreeSWITCH
c=IN IP4 198.51.100.7
t=0 0
m=audio 26780 RTP/SAVP 102 9 0 8 101 13
a=rtpmap:102 opus/48000/2
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:13 CN/8000
a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:` + padded(46) + `
a=crypto:2 AES_256_CM_HMAC_SHA1_32 inline:` + padded(46) + `
a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:` + padded(30) + `
a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:` + padded(30) + `
a=ptime:20
a=sendrecv
a=rtcp:26781 IN IP4 198.51.100.7
`)

// baresipOpusOffer: baresip with only opus loaded, rtcp-mux on, LF line
// ends and its extra attributes.
var baresipOpusOffer = []byte(strings.TrimLeft(`
v=0
o=- 948431823 1234 IN IP4 192.0.2.50
s=-
c=IN IP4 192.0.2.50
t=0 0
m=audio 11352 RTP/AVP 96 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:101 telephone-event/48000
a=fmtp:101 0-15
a=rtcp-mux
a=sendrecv
a=label:1
a=ssrc:3351213611 cname:2e8c5e8a-6c35
a=rtcp-rsize
a=mid:0
`, "\n"))

// asteriskOptimisticOffer: chan_pjsip with media_encryption=sdes and
// media_encryption_optimistic=yes: RTP/AVP carrying a=crypto.
var asteriskOptimisticOffer = crlf(`
v=0
o=- 1183705800 1183705800 IN IP4 203.0.113.10
s=Asterisk
c=IN IP4 203.0.113.10
t=0 0
m=audio 14600 RTP/AVP 8 0 101
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:` + raw(30) + `
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
`)

// g729Offer: a phone that only offers G.729 (and comfort noise).
var g729Offer = crlf(`
v=0
o=SIPPhone 2000 2000 IN IP4 192.0.2.77
s=SIP Call
c=IN IP4 192.0.2.77
t=0 0
m=audio 5004 RTP/AVP 18 13 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:13 CN/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
`)

// holdOffer renders an Asterisk-like re-INVITE with the given direction
// attribute and version.
func holdOffer(dir, version string) []byte {
	return crlf(`
v=0
o=- 1183705721 ` + version + ` IN IP4 203.0.113.10
s=Asterisk
c=IN IP4 203.0.113.10
t=0 0
m=audio 14562 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=` + dir + `
`)
}
