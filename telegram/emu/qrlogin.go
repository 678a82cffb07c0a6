package emu

import (
	"io"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
)

// qrTokenTTL is how long an exported login token stays valid. Telegram's
// tokens expire after about 30 s (core.telegram.org/api/qr-login: "the
// token expires in 30 seconds", and clients export a new one).
const qrTokenTTL = 30 * time.Second

// qrToken is one exported login token waiting for a logged-in device to
// accept it.
type qrToken struct {
	device  [8]byte // auth key that exported it
	expires time.Time
}

// qrLogins is the QR-login state of a Network. Guarded by Network.mu (the
// handlers run with it held).
type qrLogins struct {
	tokens   map[string]*qrToken // by raw token
	accepted map[[8]byte]int64   // device → user who accepted its token
}

// registerQRLogin serves the QR-code login of core.telegram.org/api/qr-login:
// the new device exports a token (auth.exportLoginToken) and shows it as
// tg://login?token=…; a logged-in device scans it and calls
// auth.acceptLoginToken; the new device gets updateLoginToken and calls
// auth.exportLoginToken again, which now signs it in
// (auth.loginTokenSuccess) or, for a 2FA account, answers
// SESSION_PASSWORD_NEEDED so that it continues with auth.checkPassword.
// auth.importLoginToken (used after a DC migration) behaves like that second
// export. The state lives in this closure, not in Network.
func (n *Network) registerQRLogin(d *tgtest.Dispatcher) {
	q := &qrLogins{tokens: map[string]*qrToken{}, accepted: map[[8]byte]int64{}}
	on(n, d, tg.AuthExportLoginTokenRequestTypeID, func(c *rpc, r *tg.AuthExportLoginTokenRequest) (bin.Encoder, error) {
		if res, err, done := q.finishLocked(c); done {
			return res, err
		}
		tok := make([]byte, 32)
		if _, err := io.ReadFull(n.opts.Random, tok); err != nil {
			return nil, tgerr.New(500, "INTERNAL")
		}
		now := time.Now()
		for k, t := range q.tokens {
			// One live token per device; expired ones go too.
			if t.device == c.dev.keyID || now.After(t.expires) {
				delete(q.tokens, k)
			}
		}
		t := &qrToken{device: c.dev.keyID, expires: now.Add(qrTokenTTL)}
		q.tokens[string(tok)] = t
		return &tg.AuthLoginToken{Expires: int(t.expires.Unix()), Token: tok}, nil
	})
	on(n, d, tg.AuthImportLoginTokenRequestTypeID, func(c *rpc, r *tg.AuthImportLoginTokenRequest) (bin.Encoder, error) {
		if res, err, done := q.finishLocked(c); done {
			return res, err
		}
		t := q.tokens[string(r.Token)]
		switch {
		case t == nil || t.device != c.dev.keyID:
			return nil, tgerr.New(400, "AUTH_TOKEN_INVALID")
		case time.Now().After(t.expires):
			return nil, tgerr.New(400, "AUTH_TOKEN_EXPIRED")
		}
		return &tg.AuthLoginToken{Expires: int(t.expires.Unix()), Token: r.Token}, nil
	})
	on(n, d, tg.AuthAcceptLoginTokenRequestTypeID, func(c *rpc, r *tg.AuthAcceptLoginTokenRequest) (bin.Encoder, error) {
		self, err := c.selfLocked()
		if err != nil {
			return nil, err
		}
		t := q.tokens[string(r.Token)]
		if t == nil {
			return nil, tgerr.New(400, "AUTH_TOKEN_INVALID")
		}
		delete(q.tokens, string(r.Token))
		if time.Now().After(t.expires) {
			return nil, tgerr.New(400, "AUTH_TOKEN_EXPIRED")
		}
		q.accepted[t.device] = self.ID
		target := n.devices[t.device]
		n.pushLocked(target, &tg.UpdateLoginToken{})
		n.log.Info("login token accepted", "user", self.ID)
		now := int(time.Now().Unix())
		hash, err := randomInt63(n.opts.Random)
		if err != nil {
			return nil, tgerr.New(500, "INTERNAL")
		}
		auth := &tg.Authorization{
			Hash:          hash,
			DeviceModel:   "emulated device",
			Platform:      "emu",
			SystemVersion: "emu",
			AppName:       "emu",
			AppVersion:    "1",
			DateCreated:   now,
			DateActive:    now,
			IP:            "127.0.0.1",
			Country:       "XX",
			Region:        "XX",
		}
		auth.SetFlags()
		return auth, nil
	})
}

// finishLocked signs the requesting device in when its token was accepted
// (done is true then, with the result or SESSION_PASSWORD_NEEDED), and
// answers a device that is already signed in.
func (q *qrLogins) finishLocked(c *rpc) (res bin.Encoder, err error, done bool) {
	n := c.n
	if c.dev.userID != 0 {
		a := n.users[c.dev.userID]
		if a != nil {
			return &tg.AuthLoginTokenSuccess{Authorization: &tg.AuthAuthorization{User: n.viewLocked(a.ID, a)}}, nil, true
		}
	}
	id, ok := q.accepted[c.dev.keyID]
	if !ok {
		return nil, nil, false
	}
	delete(q.accepted, c.dev.keyID)
	a := n.users[id]
	if a == nil {
		return nil, tgerr.New(400, "AUTH_TOKEN_INVALID"), true
	}
	if a.srp != nil {
		// The scanning device vouches for the account, not for the
		// password: a 2FA account still needs it (api/qr-login).
		c.dev.pendingUser = a.ID
		return nil, tgerr.New(401, "SESSION_PASSWORD_NEEDED"), true
	}
	return &tg.AuthLoginTokenSuccess{Authorization: n.signedInLocked(c.dev, a)}, nil, true
}
