package wire

import (
	"errors"
	"reflect"
	"testing"
)

// The golden strings are what tgcalls v2/Signaling.cpp produces with json11:
// keys in lexicographic order, compact, SSRCs and exchangeId as strings,
// feedback subtype always present, empty rtpExtensions/feedbackTypes/
// parameters written, empty ssrcGroups/payloadTypes omitted.
func TestMarshalMessageGolden(t *testing.T) {
	idx := 0
	tests := []struct {
		name string
		msg  any
		want string
	}{
		{
			"InitialSetup",
			InitialSetup{Ufrag: "u", Pwd: "p", Renomination: true, Fingerprints: []Fingerprint{{Hash: "sha-256", Setup: "actpass", Fingerprint: "AB:CD"}}},
			`{"@type":"InitialSetup","fingerprints":[{"fingerprint":"AB:CD","hash":"sha-256","setup":"actpass"}],"pwd":"p","renomination":true,"ufrag":"u"}`,
		},
		{
			"InitialSetup without fingerprints still writes the array",
			&InitialSetup{Ufrag: "u", Pwd: "p"},
			`{"@type":"InitialSetup","fingerprints":[],"pwd":"p","renomination":false,"ufrag":"u"}`,
		},
		{
			"Candidates",
			Candidates{Candidates: []Candidate{{SDPString: "candidate:1 1 udp 1 1.2.3.4 5 typ host"}}},
			`{"@type":"Candidates","candidates":[{"sdpString":"candidate:1 1 udp 1 1.2.3.4 5 typ host"}]}`,
		},
		{
			"Candidates with mid and m-line index",
			&Candidates{Candidates: []Candidate{{SDPString: "c", SDPMid: "0", SDPMLineIndex: &idx}}},
			`{"@type":"Candidates","candidates":[{"sdpMLineIndex":0,"sdpMid":"0","sdpString":"c"}]}`,
		},
		{
			"NegotiateChannels audio offer",
			NegotiateChannels{ExchangeID: 4000000000, Contents: []Content{{
				Type: MediaAudio, SSRC: 123456,
				PayloadTypes: []PayloadType{{ID: 111, Name: "opus", ClockRate: 48000, Channels: 2,
					FeedbackTypes: []FeedbackType{{Type: "transport-cc"}},
					Parameters:    map[string]string{"useinbandfec": "1", "minptime": "10"}}},
				RTPExtensions: []RTPExtension{{ID: 2, URI: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"}},
			}}},
			`{"@type":"NegotiateChannels","contents":[{"payloadTypes":[{"channels":2,"clockrate":48000,"feedbackTypes":[{"subtype":"","type":"transport-cc"}],"id":111,"name":"opus","parameters":{"minptime":"10","useinbandfec":"1"}}],"rtpExtensions":[{"id":2,"uri":"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"}],"ssrc":"123456","type":"audio"}],"exchangeId":"4000000000"}`,
		},
		{
			"NegotiateChannels video with groups, no codecs",
			&NegotiateChannels{ExchangeID: 1, Contents: []Content{{Type: MediaVideo, SSRC: 5, SSRCGroups: []SSRCGroup{{Semantics: "FID", SSRCs: []uint32{5, 6}}}}}},
			`{"@type":"NegotiateChannels","contents":[{"rtpExtensions":[],"ssrc":"5","ssrcGroups":[{"semantics":"FID","ssrcs":["5","6"]}],"type":"video"}],"exchangeId":"1"}`,
		},
		{
			// A 0 in a group (a peer may send the number 0, which
			// SsrcGroup_parse takes) is echoed as the number, never as
			// the string "0" tgcalls refuses.
			"NegotiateChannels group with a zero SSRC",
			&NegotiateChannels{ExchangeID: 2, Contents: []Content{{Type: MediaVideo, SSRC: 1, SSRCGroups: []SSRCGroup{{Semantics: "FID", SSRCs: []uint32{1, 0}}}}}},
			`{"@type":"NegotiateChannels","contents":[{"rtpExtensions":[],"ssrc":"1","ssrcGroups":[{"semantics":"FID","ssrcs":["1",0]}],"type":"video"}],"exchangeId":"2"}`,
		},
		{
			"MediaState zero value is audio-only",
			MediaState{},
			`{"@type":"MediaState","lowBattery":false,"muted":false,"screencastState":"inactive","videoRotation":0,"videoState":"inactive"}`,
		},
		{
			"MediaState muted, no HTML escaping",
			&MediaState{Muted: true, VideoState: VideoActive, VideoRotation: 270, ScreencastState: VideoSuspended},
			`{"@type":"MediaState","lowBattery":false,"muted":true,"screencastState":"suspended","videoRotation":270,"videoState":"active"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalMessage(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("MarshalMessage =\n%s\nwant\n%s", got, tt.want)
			}
			back, err := UnmarshalMessage(got)
			if err != nil {
				t.Fatalf("UnmarshalMessage: %v", err)
			}
			again, err := MarshalMessage(back)
			if err != nil || string(again) != tt.want {
				t.Fatalf("round trip =\n%s, %v", again, err)
			}
		})
	}
}

func TestMarshalMessageRejects(t *testing.T) {
	for _, m := range []any{
		nil,
		"text",
		NegotiateChannels{Contents: []Content{{Type: "data"}}},
		MediaState{VideoState: "on"},
		MediaState{ScreencastState: "on"},
		MediaState{VideoRotation: 45},
	} {
		if _, err := MarshalMessage(m); err == nil {
			t.Errorf("MarshalMessage(%#v) succeeded", m)
		}
	}
}

func TestUnmarshalMessage(t *testing.T) {
	one := 1
	tests := []struct {
		name string
		in   string
		want any // nil: expect ErrMessage
	}{
		{"unknown keys ignored", `{"@type":"InitialSetup","ufrag":"u","pwd":"p","fingerprints":[],"x":{"y":[1]}}`,
			&InitialSetup{Ufrag: "u", Pwd: "p"}},
		{"renomination of the wrong type ignored", `{"@type":"InitialSetup","ufrag":"u","pwd":"p","renomination":"yes","fingerprints":[]}`,
			&InitialSetup{Ufrag: "u", Pwd: "p"}},
		{"fingerprints required", `{"@type":"InitialSetup","ufrag":"u","pwd":"p"}`, nil},
		{"fingerprint setup required", `{"@type":"InitialSetup","ufrag":"u","pwd":"p","fingerprints":[{"hash":"sha-256","fingerprint":"AB"}]}`, nil},
		{"ufrag must be a string", `{"@type":"InitialSetup","ufrag":1,"pwd":"p","fingerprints":[]}`, nil},
		{"candidates", `{"@type":"Candidates","candidates":[{"sdpString":"c","sdpMid":"0","sdpMLineIndex":1}]}`,
			&Candidates{Candidates: []Candidate{{SDPString: "c", SDPMid: "0", SDPMLineIndex: &one}}}},
		{"candidate mid of another type ignored", `{"@type":"Candidates","candidates":[{"sdpString":"c","sdpMid":5,"sdpMLineIndex":"x"}]}`,
			&Candidates{Candidates: []Candidate{{SDPString: "c"}}}},
		{"candidate sdpString required", `{"@type":"Candidates","candidates":[{"candidate":"c"}]}`, nil},
		{"candidates must be objects", `{"@type":"Candidates","candidates":["c"]}`, nil},
		{"exchangeId as number, ssrc as number", `{"@type":"NegotiateChannels","exchangeId":7,"contents":[{"type":"audio","ssrc":9}]}`,
			&NegotiateChannels{ExchangeID: 7, Contents: []Content{{Type: MediaAudio, SSRC: 9}}}},
		{"contents optional", `{"@type":"NegotiateChannels","exchangeId":"4294967295"}`, &NegotiateChannels{ExchangeID: 4294967295}},
		{"exchangeId required", `{"@type":"NegotiateChannels","contents":[]}`, nil},
		{"exchangeId out of range", `{"@type":"NegotiateChannels","exchangeId":"4294967296"}`, nil},
		{"exchangeId not a number", `{"@type":"NegotiateChannels","exchangeId":"abc"}`, nil},
		{"exchangeId fraction", `{"@type":"NegotiateChannels","exchangeId":1.5}`, nil},
		{"content type must be audio or video", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"data","ssrc":"1"}]}`, nil},
		{"ssrc required", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio"}]}`, nil},
		{"ssrcs string 0 rejected", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"video","ssrc":"1","ssrcGroups":[{"semantics":"FID","ssrcs":["1","0"]}]}]}`, nil},
		{"feedback subtype required", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1","payloadTypes":[{"id":111,"name":"opus","clockrate":48000,"feedbackTypes":[{"type":"transport-cc"}]}]}]}`, nil},
		{"payload clockrate required", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1","payloadTypes":[{"id":111,"name":"opus"}]}]}`, nil},
		{"payload id beyond a byte", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1","payloadTypes":[{"id":256,"name":"opus","clockrate":1}]}]}`, nil},
		{"parameters must be strings", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1","payloadTypes":[{"id":1,"name":"opus","clockrate":1,"parameters":{"ptime":60}}]}]}`, nil},
		{"channels null rejected", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1","payloadTypes":[{"id":1,"name":"opus","clockrate":1,"channels":null}]}]}`, nil},
		{"rtp extension uri required", `{"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1","rtpExtensions":[{"id":2}]}]}`, nil},
		{"media state defaults", `{"@type":"MediaState"}`, &MediaState{VideoState: VideoInactive, ScreencastState: VideoInactive}},
		{"media state unknown video state reads as inactive", `{"@type":"MediaState","muted":true,"videoState":"blurry","videoRotation":90}`,
			&MediaState{Muted: true, VideoState: VideoInactive, VideoRotation: 90, ScreencastState: VideoInactive}},
		{"media state odd rotation reads as 0", `{"@type":"MediaState","videoState":"active","videoRotation":45}`,
			&MediaState{VideoState: VideoActive, ScreencastState: VideoInactive}},
		{"muted must be a bool", `{"@type":"MediaState","muted":1}`, nil},
		{"videoState must be a string", `{"@type":"MediaState","videoState":0}`, nil},
		{"videoRotation must be a number", `{"@type":"MediaState","videoRotation":"90"}`, nil},
		{"not an object", `[1,2]`, nil},
		{"null", `null`, nil},
		{"no @type", `{"ufrag":"u"}`, nil},
		{"@type not a string", `{"@type":5}`, nil},
		{"trailing garbage", `{"@type":"MediaState"} x`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnmarshalMessage([]byte(tt.in))
			if tt.want == nil {
				if !errors.Is(err, ErrMessage) {
					t.Fatalf("UnmarshalMessage = %#v, %v; want ErrMessage", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("UnmarshalMessage =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalUnknownType(t *testing.T) {
	_, err := UnmarshalMessage([]byte(`{"@type":"RequestVideo","x":1}`))
	var unknown *UnknownMessageError
	if !errors.As(err, &unknown) || unknown.Type != "RequestVideo" {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, ErrMessage) {
		t.Fatal("an unknown type is not a malformed message")
	}
}
