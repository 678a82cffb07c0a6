package emu

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
)

// registerAuth serves the phone-number login: auth.sendCode, auth.signIn
// (SESSION_PASSWORD_NEEDED for 2FA users), account.getPassword and
// auth.checkPassword with SRP (core.telegram.org/api/srp), auth.logOut.
func (n *Network) registerAuth(d *tgtest.Dispatcher) {
	on(n, d, tg.AuthSendCodeRequestTypeID, func(c *rpc, r *tg.AuthSendCodeRequest) (bin.Encoder, error) {
		phone := normalizePhone(r.PhoneNumber)
		if phone == "" {
			return nil, tgerr.New(400, "PHONE_NUMBER_INVALID")
		}
		var h [16]byte
		if _, err := io.ReadFull(n.opts.Random, h[:]); err != nil {
			return nil, tgerr.New(500, "INTERNAL")
		}
		c.dev.phone = phone
		c.dev.codeHash = hex.EncodeToString(h[:])
		c.dev.pendingUser = 0
		c.dev.srp = nil
		n.log.Debug("login code issued", "registered", n.byPhone[phone] != nil)
		return &tg.AuthSentCode{
			Type:          &tg.AuthSentCodeTypeApp{Length: len(n.opts.LoginCode)},
			PhoneCodeHash: c.dev.codeHash,
		}, nil
	})
	on(n, d, tg.AuthSignInRequestTypeID, func(c *rpc, r *tg.AuthSignInRequest) (bin.Encoder, error) {
		phone := normalizePhone(r.PhoneNumber)
		switch {
		case phone == "":
			return nil, tgerr.New(400, "PHONE_NUMBER_INVALID")
		case r.PhoneCodeHash == "":
			return nil, tgerr.New(400, "PHONE_CODE_HASH_EMPTY")
		case r.PhoneCode == "":
			return nil, tgerr.New(400, "PHONE_CODE_EMPTY")
		case c.dev.codeHash == "" || phone != c.dev.phone || r.PhoneCodeHash != c.dev.codeHash:
			return nil, tgerr.New(400, "PHONE_CODE_EXPIRED")
		case r.PhoneCode != n.opts.LoginCode:
			return nil, tgerr.New(400, "PHONE_CODE_INVALID")
		}
		a := n.byPhone[phone]
		if a == nil {
			return nil, tgerr.New(400, "PHONE_NUMBER_UNOCCUPIED")
		}
		c.dev.codeHash = ""
		if a.srp != nil {
			c.dev.pendingUser = a.ID
			return nil, tgerr.New(401, "SESSION_PASSWORD_NEEDED")
		}
		return n.signedInLocked(c.dev, a), nil
	})
	on(n, d, tg.AccountGetPasswordRequestTypeID, func(c *rpc, r *tg.AccountGetPasswordRequest) (bin.Encoder, error) {
		id := c.dev.pendingUser
		if id == 0 {
			id = c.dev.userID
		}
		a := n.users[id]
		if a == nil {
			return nil, tgerr.New(401, "AUTH_KEY_UNREGISTERED")
		}
		secure := make([]byte, 32)
		if _, err := io.ReadFull(n.opts.Random, secure); err != nil {
			return nil, tgerr.New(500, "INTERNAL")
		}
		p := &tg.AccountPassword{
			NewAlgo: &tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow{
				Salt1: secure[:8], Salt2: secure[8:24], G: dhG, P: telegramPrime,
			},
			NewSecureAlgo: &tg.SecurePasswordKdfAlgoUnknown{},
			SecureRandom:  secure,
		}
		if a.srp != nil {
			ss, err := a.srp.begin(n.opts.Random)
			if err != nil {
				return nil, tgerr.New(500, "INTERNAL")
			}
			c.dev.srp = ss
			p.HasPassword = true
			p.CurrentAlgo = a.srp.algo()
			p.SRPB = ss.gb
			p.SRPID = ss.srpID
		}
		p.SetFlags()
		return p, nil
	})
	on(n, d, tg.AuthCheckPasswordRequestTypeID, func(c *rpc, r *tg.AuthCheckPasswordRequest) (bin.Encoder, error) {
		a := n.users[c.dev.pendingUser]
		if a == nil || a.srp == nil {
			return nil, tgerr.New(400, "PASSWORD_HASH_INVALID")
		}
		in, ok := r.Password.(*tg.InputCheckPasswordSRP)
		if !ok {
			return nil, tgerr.New(400, "PASSWORD_HASH_INVALID")
		}
		ss := c.dev.srp
		c.dev.srp = nil // one answer per account.getPassword
		if ss == nil || ss.srpID != in.SRPID {
			return nil, tgerr.New(400, "SRP_ID_INVALID")
		}
		if !a.srp.check(ss, in.A, in.M1) {
			return nil, tgerr.New(400, "PASSWORD_HASH_INVALID")
		}
		c.dev.pendingUser = 0
		return n.signedInLocked(c.dev, a), nil
	})
	on(n, d, tg.AuthLogOutRequestTypeID, func(c *rpc, r *tg.AuthLogOutRequest) (bin.Encoder, error) {
		if _, err := c.selfLocked(); err != nil {
			return nil, err
		}
		c.dev.userID = 0
		return &tg.AuthLoggedOut{}, nil
	})
}

// signedInLocked binds the device to account a.
func (n *Network) signedInLocked(d *device, a *account) *tg.AuthAuthorization {
	d.userID = a.ID
	d.pendingUser = 0
	d.srp = nil
	n.log.Info("signed in", "user", a.ID)
	return &tg.AuthAuthorization{User: n.viewLocked(a.ID, a)}
}

// Login signs client c in as the user with the given phone through the real
// flow (auth.sendCode, auth.signIn with the configured code, and for 2FA
// users account.getPassword + auth.checkPassword). It does nothing when c
// is already signed in. c must be running (inside client.Run).
func (n *Network) Login(ctx context.Context, c *telegram.Client, phone, password string) error {
	code := auth.CodeAuthenticatorFunc(func(context.Context, *tg.AuthSentCode) (string, error) {
		return n.opts.LoginCode, nil
	})
	flow := auth.NewFlow(auth.Constant(phone, password, code), auth.SendCodeOptions{})
	if err := c.Auth().IfNecessary(ctx, flow); err != nil {
		return fmt.Errorf("emu: login %s: %w", phone, err)
	}
	return nil
}
