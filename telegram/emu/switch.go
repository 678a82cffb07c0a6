package emu

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
)

// The phone.* methods of the call switch: one handler per RPC, each under
// Network.mu (tgcalls.md §1 and §7.2).

// registerPhone serves the phone.* call switch (tgcalls.md §1 and §7.2).
func (n *Network) registerPhone(d *tgtest.Dispatcher) {
	on(n, d, tg.PhoneGetCallConfigRequestTypeID, func(c *rpc, r *tg.PhoneGetCallConfigRequest) (bin.Encoder, error) {
		if _, err := c.selfLocked(); err != nil {
			return nil, err
		}
		return &tg.DataJSON{Data: "{}"}, nil
	})
	on(n, d, tg.PhoneRequestCallRequestTypeID, n.requestCall)
	on(n, d, tg.PhoneReceivedCallRequestTypeID, n.receivedCall)
	on(n, d, tg.PhoneAcceptCallRequestTypeID, n.acceptCall)
	on(n, d, tg.PhoneConfirmCallRequestTypeID, n.confirmCall)
	on(n, d, tg.PhoneSendSignalingDataRequestTypeID, n.sendSignalingData)
	on(n, d, tg.PhoneDiscardCallRequestTypeID, n.discardCall)
	on(n, d, tg.PhoneSetCallRatingRequestTypeID, func(c *rpc, r *tg.PhoneSetCallRatingRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		if _, err := n.callForLocked(self, r.Peer); err != nil {
			return nil, err
		}
		return &tg.Updates{Updates: []tg.UpdateClass{}, Users: []tg.UserClass{}, Chats: []tg.ChatClass{}, Date: int(time.Now().Unix())}, nil
	})
	on(n, d, tg.PhoneSaveCallDebugRequestTypeID, func(c *rpc, r *tg.PhoneSaveCallDebugRequest) (bin.Encoder, error) {
		if _, err := c.selfLocked(); err != nil {
			return nil, err
		}
		return &tg.BoolTrue{}, nil
	})
}

func (n *Network) requestCall(c *rpc, r *tg.PhoneRequestCallRequest) (bin.Encoder, error) {
	self, err := c.selfLocked()
	if err != nil {
		return nil, err
	}
	if err := validateProtocol(r.Protocol); err != nil {
		return nil, err
	}
	if len(r.GAHash) != sha256.Size {
		return nil, tgerr.New(400, "G_A_HASH_INVALID")
	}
	callee, err := n.inputUserLocked(self, r.UserID)
	if err != nil {
		return nil, err
	}
	switch {
	case callee.ID == self.ID:
		return nil, tgerr.New(400, "USER_ID_INVALID")
	case self.blocks(callee.ID):
		return nil, tgerr.New(400, "YOU_BLOCKED_USER")
	case callee.blocks(self.ID):
		return nil, tgerr.New(403, "USER_IS_BLOCKED")
	case !callee.allows(callee.CallPrivacy, self.ID):
		return nil, tgerr.New(403, "USER_PRIVACY_RESTRICTED")
	case self.Outdated || callee.Outdated:
		return nil, tgerr.New(400, "PARTICIPANT_VERSION_OUTDATED")
	}
	id, err := randomInt63(n.opts.Random)
	if err != nil {
		return nil, tgerr.New(500, "INTERNAL")
	}
	hash, err := randomInt63(n.opts.Random)
	if err != nil {
		return nil, tgerr.New(500, "INTERNAL")
	}
	cl := &call{
		info: CallInfo{
			ID: id, AccessHash: hash,
			AdminID: self.ID, ParticipantID: callee.ID,
			State: CallWaiting, Video: r.Video, Date: time.Now(),
		},
		adminDev: c.dev,
		gaHash:   slices.Clone(r.GAHash),
		protoA:   r.Protocol,
	}
	cl.protoA.LibraryVersions = slices.Clone(r.Protocol.LibraryVersions)
	n.calls[id] = cl
	n.callOrder = append(n.callOrder, id)
	for _, d := range n.devicesOfLocked(callee.ID) {
		n.pushCallLocked(d, cl, cl.requested())
	}
	n.armLocked(cl, n.opts.CallReceiveTimeout, CallWaiting, &tg.PhoneCallDiscardReasonMissed{})
	n.log.Info("call requested", "call", id, "from", self.ID, "to", callee.ID)
	return &tg.PhonePhoneCall{
		PhoneCall: cl.waiting(cl.protoA),
		Users:     n.viewsLocked(self.ID, self.ID, callee.ID),
	}, nil
}

// liveCallLocked finds the call in for the requesting user, who must be
// its admin (the caller) or its participant (the callee) as asked, and
// refuses a call that is over. Caller holds n.mu.
func (n *Network) liveCallLocked(c *rpc, in tg.InputPhoneCall, asAdmin bool) (*account, *call, error) {
	self, err := c.selfLocked()
	if err != nil {
		return nil, nil, err
	}
	cl, err := n.callForLocked(self, in)
	if err != nil {
		return nil, nil, err
	}
	party := cl.info.ParticipantID
	if asAdmin {
		party = cl.info.AdminID
	}
	switch {
	case self.ID != party:
		return nil, nil, tgerr.New(400, "CALL_PEER_INVALID")
	case cl.info.State == CallDiscarded:
		return nil, nil, tgerr.New(400, "CALL_ALREADY_DECLINED")
	}
	return self, cl, nil
}

func (n *Network) receivedCall(c *rpc, r *tg.PhoneReceivedCallRequest) (bin.Encoder, error) {
	_, cl, err := n.liveCallLocked(c, r.Peer, false)
	if err != nil {
		return nil, err
	}
	switch {
	case cl.info.State != CallWaiting:
		return &tg.BoolTrue{}, nil // another device got there first
	}
	cl.info.State = CallRinging
	cl.info.ReceiveDate = time.Now()
	n.pushCallLocked(cl.adminDev, cl, cl.waiting(cl.protoA))
	n.armLocked(cl, n.opts.CallRingTimeout, CallRinging, &tg.PhoneCallDiscardReasonMissed{})
	return &tg.BoolTrue{}, nil
}

func (n *Network) acceptCall(c *rpc, r *tg.PhoneAcceptCallRequest) (bin.Encoder, error) {
	self, cl, err := n.liveCallLocked(c, r.Peer, false)
	if err != nil {
		return nil, err
	}
	switch {
	case cl.info.State >= CallAccepted:
		return nil, tgerr.New(400, "CALL_ALREADY_ACCEPTED")
	}
	if !r.Protocol.UDPP2P && !r.Protocol.UDPReflector {
		return nil, tgerr.New(400, "CALL_PROTOCOL_FLAGS_INVALID")
	}
	if len(r.GB) == 0 || len(r.GB) > 256 {
		return nil, tgerr.New(400, "G_B_INVALID")
	}
	a, b := cl.protoA, r.Protocol
	merged := tg.PhoneCallProtocol{
		UDPP2P:       a.UDPP2P && b.UDPP2P,
		UDPReflector: a.UDPReflector && b.UDPReflector,
		MinLayer:     max(a.MinLayer, b.MinLayer),
		MaxLayer:     min(a.MaxLayer, b.MaxLayer),
	}
	for _, v := range a.LibraryVersions {
		if slices.Contains(b.LibraryVersions, v) && !slices.Contains(merged.LibraryVersions, v) {
			merged.LibraryVersions = append(merged.LibraryVersions, v)
		}
	}
	if len(merged.LibraryVersions) == 0 || merged.MinLayer > merged.MaxLayer {
		return nil, tgerr.New(406, "CALL_PROTOCOL_COMPAT_LAYER_INVALID")
	}
	cl.merged = merged
	cl.gb = slices.Clone(r.GB)
	cl.partDev = c.dev
	cl.info.State = CallAccepted
	cl.info.AcceptDate = time.Now()
	cl.info.LibraryVersions = slices.Clone(merged.LibraryVersions)
	n.pushCallLocked(cl.adminDev, cl, cl.accepted())
	for _, d := range n.devicesOfLocked(self.ID) {
		if d != c.dev {
			// Another device answered: stop ringing here (no reason given,
			// which tdesktop shows as "ended on another device").
			other := cl.discarded()
			other.Reason = nil
			other.SetFlags()
			n.pushCallLocked(d, cl, other)
		}
	}
	n.armLocked(cl, n.opts.CallConnectTimeout, CallAccepted, &tg.PhoneCallDiscardReasonDisconnect{})
	return &tg.PhonePhoneCall{
		PhoneCall: cl.waiting(cl.merged),
		Users:     n.viewsLocked(self.ID, cl.info.AdminID, cl.info.ParticipantID),
	}, nil
}

func (n *Network) confirmCall(c *rpc, r *tg.PhoneConfirmCallRequest) (bin.Encoder, error) {
	self, cl, err := n.liveCallLocked(c, r.Peer, true)
	if err != nil {
		return nil, err
	}
	switch {
	case c.dev != cl.adminDev:
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	case cl.info.State == CallActive:
		return nil, tgerr.New(400, "CALL_ALREADY_ACCEPTED")
	case cl.info.State != CallAccepted:
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	}
	sum := sha256.Sum256(r.GA)
	if !bytes.Equal(sum[:], cl.gaHash) {
		return nil, tgerr.New(400, "G_A_HASH_INVALID")
	}
	version := cl.merged.LibraryVersions[0]
	for _, v := range cl.merged.LibraryVersions[1:] {
		if versionLess(version, v) {
			version = v
		}
	}
	tag, err := n.peerTag()
	if err != nil {
		return nil, tgerr.New(500, "INTERNAL")
	}
	override, relays := n.faults.confirmOverrides()
	if override.Version != "" {
		version = override.Version
	}
	cl.params = override.CustomParameters
	conns := make([]tg.PhoneConnection, 0, len(n.reflectors))
	for _, rf := range n.reflectors {
		if relays.NoReflectors {
			break
		}
		conns = append(conns, tg.PhoneConnection{
			ID: rf.id, IP: rf.addr.Addr().String(), Port: int(rf.addr.Port()), PeerTag: tag,
		})
	}
	cl.webrtc = nil
	if n.turn != nil && !relays.NoTURN {
		cl.webrtc = append(cl.webrtc, *n.turn.connection())
	}
	admin, part := n.users[cl.info.AdminID], n.users[cl.info.ParticipantID]
	cl.ga = slices.Clone(r.GA)
	cl.info.State = CallActive
	cl.info.StartDate = time.Now()
	cl.info.KeyFingerprint = r.KeyFingerprint
	cl.info.Version = version
	cl.info.Connections = conns
	cl.info.P2PAllowed = admin.allows(admin.P2P, part.ID) && part.allows(part.P2P, admin.ID)
	n.stopTimerLocked(cl)
	n.pushCallLocked(cl.partDev, cl, cl.active(cl.ga))
	n.log.Info("call active", "call", cl.info.ID, "version", version, "p2p", cl.info.P2PAllowed)
	return &tg.PhonePhoneCall{
		PhoneCall: cl.active(cl.gb),
		Users:     n.viewsLocked(self.ID, cl.info.AdminID, cl.info.ParticipantID),
	}, nil
}

func (n *Network) sendSignalingData(c *rpc, r *tg.PhoneSendSignalingDataRequest) (bin.Encoder, error) {
	self, err := c.selfLocked()
	if err != nil {
		return nil, err
	}
	cl, err := n.callForLocked(self, r.Peer)
	if err != nil {
		return nil, err
	}
	var to *device
	switch {
	case self.ID == cl.info.AdminID && c.dev == cl.adminDev:
		to = cl.partDev
	case self.ID == cl.info.ParticipantID && c.dev == cl.partDev:
		to = cl.adminDev
	default:
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	}
	if cl.info.State != CallActive {
		return nil, tgerr.New(400, "CALL_NOT_ACTIVE")
	}
	n.pushSignalingLocked(to, &tg.UpdatePhoneCallSignalingData{
		PhoneCallID: cl.info.ID,
		Data:        slices.Clone(r.Data),
	}, cl.info.AdminID, cl.info.ParticipantID)
	return &tg.BoolTrue{}, nil
}

func (n *Network) discardCall(c *rpc, r *tg.PhoneDiscardCallRequest) (bin.Encoder, error) {
	self, err := c.selfLocked()
	if err != nil {
		return nil, err
	}
	cl, err := n.callForLocked(self, r.Peer)
	if err != nil {
		return nil, err
	}
	switch {
	case cl.info.State == CallDiscarded:
		// Idempotent: a retry after a lost answer gets the same result.
	case self.ID == cl.info.AdminID && c.dev != cl.adminDev:
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	case self.ID == cl.info.ParticipantID && cl.partDev != nil && c.dev != cl.partDev:
		return nil, tgerr.New(400, "CALL_ALREADY_ACCEPTED")
	default:
		n.discardLocked(cl, self, c.dev, r.Reason, r.Duration)
		n.log.Info("call discarded", "call", cl.info.ID, "by", self.ID, "duration", r.Duration)
	}
	return &tg.Updates{
		Updates: []tg.UpdateClass{&tg.UpdatePhoneCall{PhoneCall: cl.discarded()}},
		Users:   n.viewsLocked(self.ID, cl.info.AdminID, cl.info.ParticipantID),
		Chats:   []tg.ChatClass{},
		Date:    int(time.Now().Unix()),
	}, nil
}
