package emu

import (
	"io"
	"strings"
	"sync"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
)

// rpc is the context of one request: the device (auth key) that sent it.
type rpc struct {
	n   *Network
	req *tgtest.Request
	dev *device
}

// selfLocked is the signed-in account of the request, or 401
// AUTH_KEY_UNREGISTERED. Caller holds n.mu.
func (c *rpc) selfLocked() (*account, error) {
	if c.dev.userID == 0 {
		return nil, tgerr.New(401, "AUTH_KEY_UNREGISTERED")
	}
	a := c.n.users[c.dev.userID]
	if a == nil {
		return nil, tgerr.New(401, "AUTH_KEY_UNREGISTERED")
	}
	return a, nil
}

// on registers a typed handler for request type id. fn runs with n.mu held
// and returns the result to send (after the lock is released).
func on[R any, PR interface {
	*R
	bin.Decoder
}](n *Network, d *tgtest.Dispatcher, id uint32, fn func(c *rpc, r PR) (bin.Encoder, error)) {
	d.HandleFunc(id, func(srv *tgtest.Server, req *tgtest.Request) error {
		r := PR(new(R))
		if err := r.Decode(req.Buf); err != nil {
			return tgerr.New(400, "INPUT_REQUEST_INVALID")
		}
		n.mu.Lock()
		c := &rpc{n: n, req: req, dev: n.deviceLocked(req.Session.AuthKey.ID)}
		res, err := fn(c, r)
		n.mu.Unlock()
		if err != nil {
			return err
		}
		return srv.SendResult(req, res)
	})
}

var (
	methodNamesOnce sync.Once
	methodNames     map[uint32]string
)

// methodName is the TL name of a request type ("phone.requestCall").
func methodName(id uint32) string {
	methodNamesOnce.Do(func() {
		methodNames = map[uint32]string{}
		for k, v := range tg.TypesMap() {
			name, _, _ := strings.Cut(v, "#")
			methodNames[k] = name
		}
	})
	return methodNames[id]
}

// handler builds the server's request handler: invoke wrappers are
// unpacked, the session is bound to its device, vanished users are
// swallowed, one-shot faults fire, then the method runs.
func (n *Network) handler() tgtest.Handler {
	d := tgtest.NewDispatcher()
	n.registerAuth(d)
	n.registerQRLogin(d)
	n.registerUsers(d)
	n.registerUpdates(d)
	n.registerPhone(d)
	on(n, d, tg.HelpGetConfigRequestTypeID, func(c *rpc, r *tg.HelpGetConfigRequest) (bin.Encoder, error) {
		return c.n.configLocked(), nil
	})
	on(n, d, tg.HelpGetNearestDCRequestTypeID, func(c *rpc, r *tg.HelpGetNearestDCRequest) (bin.Encoder, error) {
		return &tg.NearestDC{Country: "XX", ThisDC: DC, NearestDC: DC}, nil
	})
	on(n, d, tg.MessagesGetDhConfigRequestTypeID, n.getDhConfig)
	d.Fallback(tgtest.HandlerFunc(func(srv *tgtest.Server, req *tgtest.Request) error {
		id, err := req.Buf.PeekID()
		if err != nil {
			return tgerr.New(400, "INPUT_REQUEST_INVALID")
		}
		switch id {
		case mt.MsgsAckTypeID, mt.MsgResendReqTypeID, mt.MsgsStateReqTypeID,
			mt.HTTPWaitRequestTypeID, mt.DestroySessionRequestTypeID:
			// Service messages needing no answer from an emulator.
			return nil
		}
		n.log.Debug("method not implemented", "method", methodName(id))
		return tgerr.New(400, "INPUT_METHOD_INVALID")
	}))

	inner := tgtest.HandlerFunc(func(srv *tgtest.Server, req *tgtest.Request) error {
		id, err := req.Buf.PeekID()
		if err != nil {
			return tgerr.New(400, "INPUT_REQUEST_INVALID")
		}
		n.mu.Lock()
		dev := n.bindLocked(req.Session)
		vanished := n.faults.vanishedLocked(dev.userID)
		n.mu.Unlock()
		if vanished {
			return nil // swallowed: the client hears nothing
		}
		if e := n.faults.takeFail(methodName(id)); e != nil {
			return e
		}
		return d.OnMessage(srv, req)
	})
	return tgtest.UnpackInvoke(inner)
}

func (n *Network) getDhConfig(c *rpc, r *tg.MessagesGetDhConfigRequest) (bin.Encoder, error) {
	l := r.RandomLength
	if l < 0 || l > 1024 {
		return nil, tgerr.New(400, "RANDOM_LENGTH_INVALID")
	}
	random := make([]byte, l)
	if _, err := io.ReadFull(n.opts.Random, random); err != nil {
		return nil, tgerr.New(500, "INTERNAL")
	}
	if r.Version == n.dh.version {
		return &tg.MessagesDhConfigNotModified{Random: random}, nil
	}
	return &tg.MessagesDhConfig{G: dhG, P: n.dh.p, Version: n.dh.version, Random: random}, nil
}

// inputUserLocked resolves an InputUser for self. Caller holds n.mu.
func (n *Network) inputUserLocked(self *account, in tg.InputUserClass) (*account, error) {
	switch u := in.(type) {
	case *tg.InputUserSelf:
		return self, nil
	case *tg.InputUser:
		a := n.users[u.UserID]
		if a == nil || a.AccessHash != u.AccessHash {
			return nil, tgerr.New(400, "USER_ID_INVALID")
		}
		return a, nil
	}
	return nil, tgerr.New(400, "USER_ID_INVALID")
}

func (n *Network) registerUsers(d *tgtest.Dispatcher) {
	on(n, d, tg.UsersGetUsersRequestTypeID, func(c *rpc, r *tg.UsersGetUsersRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		out := &tg.UserClassVector{}
		for _, in := range r.ID {
			a, err := n.inputUserLocked(self, in)
			if err != nil {
				id := int64(0)
				if u, ok := in.(*tg.InputUser); ok {
					id = u.UserID
				}
				out.Elems = append(out.Elems, &tg.UserEmpty{ID: id})
				continue
			}
			out.Elems = append(out.Elems, n.viewLocked(self.ID, a))
		}
		return out, nil
	})
	on(n, d, tg.UsersGetFullUserRequestTypeID, func(c *rpc, r *tg.UsersGetFullUserRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		a, err := n.inputUserLocked(self, r.ID)
		if err != nil {
			return nil, err
		}
		full := tg.UserFull{
			ID:                  a.ID,
			Blocked:             self.blocks(a.ID),
			PhoneCallsAvailable: true,
			PhoneCallsPrivate:   !a.allows(a.CallPrivacy, self.ID),
			VideoCallsAvailable: true,
			Settings:            tg.PeerSettings{},
			NotifySettings:      tg.PeerNotifySettings{},
		}
		full.SetFlags()
		return &tg.UsersUserFull{
			FullUser: full,
			Chats:    []tg.ChatClass{},
			Users:    n.viewsLocked(self.ID, a.ID),
		}, nil
	})
	resolved := func(self, a *account) *tg.ContactsResolvedPeer {
		return &tg.ContactsResolvedPeer{
			Peer:  &tg.PeerUser{UserID: a.ID},
			Chats: []tg.ChatClass{},
			Users: n.viewsLocked(self.ID, a.ID),
		}
	}
	on(n, d, tg.ContactsResolveUsernameRequestTypeID, func(c *rpc, r *tg.ContactsResolveUsernameRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		a := n.byUsername[strings.ToLower(strings.TrimPrefix(r.Username, "@"))]
		if a == nil {
			return nil, tgerr.New(400, "USERNAME_NOT_OCCUPIED")
		}
		return resolved(self, a), nil
	})
	on(n, d, tg.ContactsResolvePhoneRequestTypeID, func(c *rpc, r *tg.ContactsResolvePhoneRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		p := normalizePhone(r.Phone)
		if p == "" {
			return nil, tgerr.New(400, "PHONE_NUMBER_INVALID")
		}
		a := n.byPhone[p]
		if a == nil || !phoneVisible(self, a) {
			return nil, tgerr.New(400, "PHONE_NOT_OCCUPIED")
		}
		return resolved(self, a), nil
	})
	on(n, d, tg.ContactsImportContactsRequestTypeID, func(c *rpc, r *tg.ContactsImportContactsRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		res := &tg.ContactsImportedContacts{
			Imported:       []tg.ImportedContact{},
			PopularInvites: []tg.PopularContact{},
			RetryContacts:  []int64{},
		}
		var ids []int64
		for _, pc := range r.Contacts {
			a := n.byPhone[normalizePhone(pc.Phone)]
			if a == nil {
				continue
			}
			if !self.hasContact(a.ID) && a.ID != self.ID {
				self.Contacts = append(self.Contacts, a.ID)
			}
			res.Imported = append(res.Imported, tg.ImportedContact{UserID: a.ID, ClientID: pc.ClientID})
			ids = append(ids, a.ID)
		}
		res.Users = n.viewsLocked(self.ID, ids...)
		return res, nil
	})
	on(n, d, tg.ContactsGetContactsRequestTypeID, func(c *rpc, r *tg.ContactsGetContactsRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		res := &tg.ContactsContacts{Contacts: []tg.Contact{}}
		var ids []int64
		for _, id := range self.Contacts {
			a := n.users[id]
			if a == nil {
				continue
			}
			res.Contacts = append(res.Contacts, tg.Contact{UserID: id, Mutual: a.hasContact(self.ID)})
			ids = append(ids, id)
		}
		res.SavedCount = len(ids)
		res.Users = n.viewsLocked(self.ID, ids...)
		return res, nil
	})
}

func (n *Network) registerUpdates(d *tgtest.Dispatcher) {
	on(n, d, tg.UpdatesGetStateRequestTypeID, func(c *rpc, r *tg.UpdatesGetStateRequest) (bin.Encoder, error) {
		if _, err := c.selfLocked(); err != nil {
			return nil, err
		}
		st := n.stateLocked(c.dev)
		c.dev.synced = st.Seq
		return &st, nil
	})
	on(n, d, tg.UpdatesGetDifferenceRequestTypeID, func(c *rpc, r *tg.UpdatesGetDifferenceRequest) (bin.Encoder, error) {
		if _, err := c.selfLocked(); err != nil {
			return nil, err
		}
		return n.differenceLocked(c.dev, r.Date), nil
	})
}
