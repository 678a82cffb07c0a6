package sip

import (
	"strings"
	"sync"
	"time"

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
// Its call's loop owns it (loop.go): the fields below callID … laddr are
// set when it is made, the rest change only on the loop.
type dialog struct {
	callID    string
	localTag  LocalTag
	remoteTag RemoteTag // empty in an early UAC dialog until a response names it

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

	// contact is our Contact in this dialog (nil: the listener's, see
	// Server.contact); set when it names a connection of ours.
	contact      *sip.ContactHeader
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	localCSeq    uint32
	remoteCSeq   uint32
}

// firstCSeq is a dialog's first local CSeq: small and not predictable
// across calls (RFC 3261 §8.1.1.5 only asks for < 2**31).
func firstCSeq() uint32 { return 1 + uint32(time.Now().UnixNano()%1000) }

// newUASDialog makes the dialog an INVITE from the peer creates
// (RFC 3261 §12.1.1): their From is our To, the route set is the
// Record-Route in order, the remote target their Contact.
func newUASDialog(req *sip.Request, tag LocalTag) *dialog {
	from, to := req.From(), req.To()
	d := &dialog{
		callID:     req.CallID().Value(),
		localTag:   tag,
		remoteTag:  RemoteTag(fromTag(req)),
		local:      to.Address,
		remote:     from.Address,
		transport:  req.Transport(),
		dest:       req.Source(),
		remoteCSeq: req.CSeq().SeqNo,
		localCSeq:  firstCSeq(),
	}
	if ct := req.Contact(); ct != nil {
		d.remoteTarget = *ct.Address.Clone()
	} else {
		d.remoteTarget = *from.Address.Clone()
	}
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			d.routeSet = append(d.routeSet, *rr.Address.Clone())
		}
	}
	return d
}

// newUACDialog makes the early dialog of an INVITE we send to target
// (RFC 3261 §12.1.2): the remote tag, route set and target come with the
// response that confirms it (confirm).
func newUACDialog(callID string, tag LocalTag, local, target sip.Uri, transport string) *dialog {
	return &dialog{
		callID:       callID,
		localTag:     tag,
		local:        local,
		remote:       sip.Uri{Scheme: target.Scheme, User: target.User, Host: target.Host, Port: target.Port},
		transport:    transport,
		remoteTarget: target,
		localCSeq:    firstCSeq(),
	}
}

// confirm takes the remote tag, route set (Record-Route in reverse order)
// and target from a response that creates the dialog (RFC 3261 §12.1.2).
func (d *dialog) confirm(res *sip.Response) {
	d.remoteTag = RemoteTag(toTag(res))
	rr := res.GetHeaders("Record-Route")
	d.routeSet = d.routeSet[:0]
	for i := len(rr) - 1; i >= 0; i-- {
		if h, ok := rr[i].(*sip.RecordRouteHeader); ok {
			d.routeSet = append(d.routeSet, *h.Address.Clone())
		}
	}
	d.setTarget(res.Contact())
}

// fork is the dialog another fork's 2xx would make: same Call-ID and our
// tag, its tag and target (to ACK and end it).
func (d *dialog) fork(res *sip.Response) *dialog {
	f := &dialog{
		callID: d.callID, localTag: d.localTag, remoteTag: RemoteTag(toTag(res)),
		local: d.local, remote: d.remote, transport: d.transport, laddr: d.laddr,
		remoteTarget: *d.remoteTarget.Clone(),
	}
	f.setTarget(res.Contact())
	return f
}

// nextCSeq reserves a CSeq number for a new request we send.
func (d *dialog) nextCSeq() uint32 {
	d.localCSeq++
	return d.localCSeq
}

// checkRemoteCSeq enforces RFC 3261 §12.2.2: a request with a lower CSeq
// than the last one is out of order and gets 500.
func (d *dialog) checkRemoteCSeq(n uint32, method sip.RequestMethod) bool {
	if method == sip.ACK || method == sip.CANCEL {
		return true
	}
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
		d.remoteTarget = *c.Address.Clone()
	}
}

// setContact records our Contact in the dialog.
func (d *dialog) setContact(c *sip.ContactHeader) {
	if c != nil {
		d.contact = c.Clone()
	}
}

// newRequest builds an in-dialog request (RFC 3261 §12.2.1.1).
func (d *dialog) newRequest(method sip.RequestMethod, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, *d.remoteTarget.Clone())
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
	for _, r := range d.routeSet {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	req.SetTransport(d.transport)
	if len(d.routeSet) == 0 && d.dest != "" {
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

// dialogOwner is a call that receives the in-dialog requests of its
// dialog; both post them to the call's loop (leg).
type dialogOwner interface {
	handleInDialog(req *sip.Request, tx sip.ServerTransaction)
	handleAck(req *sip.Request)
	shutdown()
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
