//go:build tools

// Package deps pins the modules the project builds on before every package
// imports them, so that go mod tidy keeps go.mod stable while work is split.
package deps

import (
	_ "github.com/emiago/sipgo"
	_ "github.com/gotd/td/telegram"
	_ "github.com/gotd/td/tg"
	_ "github.com/gotd/td/tgtest"
	_ "github.com/gotd/td/tgtest/cluster"
	_ "github.com/gotd/td/telegram/auth"
	_ "github.com/gotd/td/session"
	_ "github.com/pion/ice/v4"
	_ "github.com/pion/dtls/v3"
	_ "github.com/pion/srtp/v3"
	_ "github.com/pion/rtp"
	_ "github.com/pion/rtcp"
	_ "github.com/pion/stun/v4"
	_ "github.com/pion/turn/v5"
	_ "github.com/pion/transport/v5/vnet"
	_ "github.com/pion/sdp/v3"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/pion/interceptor/pkg/twcc"
	_ "go.uber.org/goleak"
	_ "gopkg.in/hraban/opus.v2"
	_ "github.com/icholy/digest"
)

