// Command perfrelay measures the trunk's media relay under load, with the
// trunk in a process of its own so that its CPU and memory are counted
// alone (issue 12; method: research/perf.md §1).
//
// It runs as two processes. The generator (this command without -relay)
// runs the emulated Telegram, the far ends of N calls (a Telegram user
// per call with its own socket, and a SIP peer with SDES-SRTP per call),
// and starts the relay: itself with -relay, pinned with taskset to another
// core, GOMAXPROCS=1. The relay logs N trunk accounts in (one per call,
// as the issue counts memory "with its Telegram account"), all on one
// shared UDP port (media.NewSharedPort, as serve's telegram.media_port),
// and on the generator's request bridges each call as b2bua.Media does: sip/rtpendpoint (SDES-SRTP) ⇄ rtpbridge ⇄
// tgcall.Conn (DTLS-SRTP). Generator and relay talk JSON lines over the
// relay's stdin/stdout.
//
// With -rtpengine the generator also starts Debian's rtpengine (userspace,
// pinned to the relay's core) and sends the same packets, at the same
// times, through an rtpengine call per call: SDES-SRTP
// (AES_CM_128_HMAC_SHA1_80) on side A, plain RTP on side B.
//
// Everything stays on 127.0.0.1. See docs/performance.md and
// scripts/perf/.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"
)

func main() {
	var o options
	flag.BoolVar(&o.relay, "relay", false, "run as the relay (started by the generator)")
	flag.IntVar(&o.calls, "calls", 50, "concurrent calls")
	flag.IntVar(&o.accounts, "accounts", 0, "trunk accounts (and far users) the calls are spread over, 0 = one per call")
	flag.StringVar(&o.codec, "codec", "opus", "SIP leg codec: opus (passthrough) or PCMU (transcoding)")
	flag.IntVar(&o.complexity, "complexity", 5, "Opus encoder complexity when transcoding")
	flag.DurationVar(&o.warm, "warm", 2*time.Second, "warm-up before the window")
	flag.DurationVar(&o.dur, "dur", 10*time.Second, "measurement window")
	flag.BoolVar(&o.rtpengine, "rtpengine", false, "relay the same packets through rtpengine too")
	flag.IntVar(&o.relayCPU, "relay-cpu", 1, "CPU the relay (and rtpengine) is pinned to, -1 for none")
	flag.StringVar(&o.profile, "profile", "", "directory for the relay's heap, goroutine and CPU profiles")
	flag.IntVar(&o.relayProcs, "relay-procs", 1, "the relay's GOMAXPROCS (it stays pinned to one CPU)")
	flag.BoolVar(&o.idle, "idle", false, "send no media: the relay's CPU for connected, silent calls")
	flag.BoolVar(&o.heapAll, "heapall", false, "the relay's heap profile records every allocation (slows the relay: not for CPU numbers)")
	flag.IntVar(&o.par, "par", 4, "calls set up in parallel")
	flag.BoolVar(&o.poller, "poller", true, "the relay's SIP endpoints push through one shared rtpendpoint.Poller (else a reading goroutine each)")
	flag.BoolVar(&o.hold, "hold", true, "with -poller: the Poller holds the shared Telegram port's writes for each wake-up's batch (one sendmmsg), as the trunk does")
	flag.IntVar(&o.tgFrame, "tg-frame", 20, "transcoding: ms of Opus per packet the Telegram user sends, 20, 40 or 60 (tgcalls sends 60)")
	flag.Parse()
	if o.tgFrame != 20 && o.tgFrame != 40 && o.tgFrame != 60 {
		fmt.Fprintln(os.Stderr, "perfrelay: -tg-frame must be 20, 40 or 60")
		os.Exit(2)
	}
	if o.accounts <= 0 || o.accounts > o.calls {
		o.accounts = o.calls
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var err error
	if o.relay {
		err = runRelay(log)
	} else {
		err = runGen(o, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "perfrelay:", err)
		os.Exit(1)
	}
}

type options struct {
	relay      bool
	calls      int
	accounts   int
	codec      string
	complexity int
	warm, dur  time.Duration
	rtpengine  bool
	relayCPU   int
	profile    string
	par        int
	heapAll    bool
	idle       bool
	relayProcs int
	poller     bool
	hold       bool // the Poller holds the Telegram port's writes per wake-up
	tgFrame    int  // ms of audio per packet the Telegram user sends when transcoding
}

// tgPer is how many 20 ms slots one Telegram user's packet spans.
func (o options) tgPer() int { return max(o.tgFrame/20, 1) }

// maxCalls is how many calls one account carries at once.
func (o options) maxCalls() int { return (o.calls+o.accounts-1)/o.accounts + 1 }
