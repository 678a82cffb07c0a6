package sip

import (
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// LocalTag and RemoteTag are the two halves of a dialog's identity
// (RFC 3261 §12); distinct types keep them from being swapped.
type (
	LocalTag  string
	RemoteTag string
)

// dialog is the RFC 3261 §12 state shared by both call directions: who we
// are, who they are, where in-dialog requests go and the CSeq spaces.
type dialog struct {
	callID    string
	localTag  LocalTag
	remoteTag RemoteTag

	local  sip.Uri // our URI (From of our requests)
	remote sip.Uri // their URI (To of our requests)

	transport string
	// dest is where in-dialog requests are sent when there is no route
	// set: the address the dialog's first request came from (or went to).
	// Sending there rather than to the Contact host copes with peers behind
	// NAT that put a private address in Contact, and on TCP/TLS reuses the
	// same connection (sipgo#361).
	dest string
	// laddr is our listener for UDP so requests leave from the port the
	// peer knows.
	laddr sip.Addr

	mu sync.Mutex
	// contact is our Contact in this dialog (nil: the listener's, see
	// Server.contact); set when it names a connection of ours.
	contact      *sip.ContactHeader
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	localCSeq    uint32
	remoteCSeq   uint32
}

// nextCSeq reserves a CSeq number for a new request we send.
func (d *dialog) nextCSeq() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.localCSeq++
	return d.localCSeq
}

// checkRemoteCSeq enforces RFC 3261 §12.2.2: a request with a lower CSeq
// than the last one is out of order and gets 500.
func (d *dialog) checkRemoteCSeq(n uint32, method sip.RequestMethod) bool {
	if method == sip.ACK || method == sip.CANCEL {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.remoteCSeq != 0 && n <= d.remoteCSeq {
		return false
	}
	d.remoteCSeq = n
	return true
}

// setTarget updates the remote target from a Contact (RFC 3261 §12.2.1.2:
// target refresh requests and their 2xx carry a new Contact).
func (d *dialog) setTarget(c *sip.ContactHeader) {
	if c != nil {
		d.mu.Lock()
		d.remoteTarget = *c.Address.Clone()
		d.mu.Unlock()
	}
}

// setContact records our Contact in the dialog.
func (d *dialog) setContact(c *sip.ContactHeader) {
	if c != nil {
		d.mu.Lock()
		d.contact = c.Clone()
		d.mu.Unlock()
	}
}

// newRequest builds an in-dialog request (RFC 3261 §12.2.1.1).
func (d *dialog) newRequest(method sip.RequestMethod, cseq uint32) *sip.Request {
	d.mu.Lock()
	target := *d.remoteTarget.Clone()
	routes := make([]sip.Uri, len(d.routeSet))
	copy(routes, d.routeSet)
	d.mu.Unlock()

	req := sip.NewRequest(method, target)
	from := &sip.FromHeader{Address: d.local, Params: sip.NewParams()}
	from.Params.Add("tag", string(d.localTag))
	to := &sip.ToHeader{Address: d.remote, Params: sip.NewParams()}
	if d.remoteTag != "" {
		to.Params.Add("tag", string(d.remoteTag))
	}
	callID := sip.CallIDHeader(d.callID)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, r := range routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	req.SetTransport(d.transport)
	if len(routes) == 0 && d.dest != "" {
		req.SetDestination(d.dest)
	}
	if d.laddr.IP != nil {
		req.Laddr = d.laddr
	}
	return req
}

// dialogKey identifies a dialog in the registry. Local tags are random
// and unique per process, so Call-ID plus local tag is enough; the remote
// tag is checked by the owner (it is unknown in an early UAC dialog).
type dialogKey struct {
	callID   string
	localTag LocalTag
}

// dialogOwner is a call that receives the in-dialog requests of its dialog.
type dialogOwner interface {
	handleInDialog(req *sip.Request, tx sip.ServerTransaction)
	handleAck(req *sip.Request)
}

// registry is our own dialog table (not sipgo's DialogServerCache): every
// live call is here from its first response until it ends.
type registry struct {
	mu    sync.Mutex
	calls map[dialogKey]dialogOwner
}

func newRegistry() *registry {
	return &registry{calls: map[dialogKey]dialogOwner{}}
}

func (r *registry) add(k dialogKey, o dialogOwner) {
	r.mu.Lock()
	r.calls[k] = o
	r.mu.Unlock()
}

func (r *registry) remove(k dialogKey) {
	r.mu.Lock()
	delete(r.calls, k)
	r.mu.Unlock()
}

func (r *registry) get(k dialogKey) dialogOwner {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[k]
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *registry) all() []dialogOwner {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]dialogOwner, 0, len(r.calls))
	for _, o := range r.calls {
		out = append(out, o)
	}
	return out
}

// keyForIncoming finds the dialog an incoming in-dialog request belongs to:
// its To tag is our local tag.
func keyForIncoming(req *sip.Request) (dialogKey, bool) {
	cid := req.CallID()
	to := req.To()
	if cid == nil || to == nil {
		return dialogKey{}, false
	}
	tag, ok := to.Params.Get("tag")
	if !ok || tag == "" {
		return dialogKey{}, false
	}
	return dialogKey{callID: cid.Value(), localTag: LocalTag(tag)}, true
}

// headerValues returns every comma-separated token of the named headers.
func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		for _, v := range strings.Split(h.Value(), ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// hasOption reports whether a Supported/Require-style header lists tag.
func hasOption(m sip.Message, name, tag string) bool {
	for _, v := range headerValues(m, name) {
		if strings.EqualFold(v, tag) {
			return true
		}
	}
	return false
}

// remoteTagOf returns the tag of the From header of req.
func fromTag(m sip.Message) string {
	if f := m.From(); f != nil {
		t, _ := f.Params.Get("tag")
		return t
	}
	return ""
}

func toTag(m sip.Message) string {
	if t := m.To(); t != nil {
		v, _ := t.Params.Get("tag")
		return v
	}
	return ""
}
