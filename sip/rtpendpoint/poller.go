package rtpendpoint

// A Poller reads the RTP sockets of many pushing endpoints (PushRTP) from
// one goroutine, instead of a goroutine per endpoint blocked in its
// socket: on Linux it waits on an epoll set of those sockets (itself
// waited on through Go's netpoller, so no thread blocks) and reads each
// ready socket with recvmmsg(2), one system call per socket per wake-up
// with no failed read to find the socket empty, and one clock reading per
// wake-up for every packet in it. Elsewhere NewPoller returns an error and
// endpoints push from goroutines of their own.
//
// Pass a Poller in Options to every endpoint that may push; Close it
// after them. Its goroutine runs every endpoint's receive path and the
// deliver functions, so a deliver that blocks holds up every call on it,
// and one Poller uses one CPU at most: give a machine one Poller per CPU
// (GOMAXPROCS) and spread the endpoints over them.

// PollerOptions tune a Poller.
type PollerOptions struct {
	// BeforeBatch and AfterBatch, if set, run on the Poller's goroutine
	// before and after each batch of ready sockets it handles (the
	// sockets one epoll_wait(2) returned: their reads, receive paths and
	// deliver functions). A deliver that writes to a transport able to
	// batch its writes uses them to hold those writes for the batch: the
	// b2bua sets them to the Telegram media transport's HoldWrites and
	// ReleaseWrites, so the SIP → Telegram packets of one wake-up leave
	// the shared Telegram port in one sendmmsg(2). Each BeforeBatch is
	// followed by its AfterBatch; neither may block.
	BeforeBatch, AfterBatch func()
}
