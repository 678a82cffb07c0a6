package emu

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
)

// TestKeyExchangeWhileServing: new clients finish their key exchanges
// while a logged-in client's requests are being served. Without the
// auth-key guard (keyguard.go) gotd's tgtest writes its key map under one
// mutex and reads it under another, which -race reports here (and which
// can crash a loaded emulator).
func TestKeyExchangeWhileServing(t *testing.T) {
	n := shnet(t)
	busy := loggedIn(t, "alice")
	ctx, cancel := context.WithCancel(ctxSlow(t))
	var wg sync.WaitGroup
	var served int
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, err := busy.api.HelpGetConfig(ctx); err != nil {
				if ctx.Err() == nil {
					t.Errorf("help.getConfig while keys are made: %v", err)
				}
				return
			}
			served++
		}
	})
	var clients sync.WaitGroup
	for i := range 2 {
		clients.Go(func() {
			c, err := startClient(n.ClientOptions(), fmt.Sprintf("fresh%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.close()
			// The new key serves requests too.
			if _, err := c.api.HelpGetConfig(ctx); err != nil {
				t.Errorf("help.getConfig on a new key: %v", err)
			}
		})
	}
	clients.Wait()
	cancel()
	wg.Wait()
	if served == 0 {
		t.Fatal("no request was served while the keys were made")
	}
}

// TestIsDHGenOK: the guard recognises dh_gen_ok as gotd's codecs write it
// (the message alone, or a full-transport frame) and nothing else.
func TestIsDHGenOK(t *testing.T) {
	msg := make([]byte, 8+8+4+4+48) // auth_key_id 0, msg_id, length, dh_gen_ok, nonces
	binary.LittleEndian.PutUint64(msg[8:], 0x5f1e_0000_0000_0004)
	binary.LittleEndian.PutUint32(msg[16:], 52)
	binary.LittleEndian.PutUint32(msg[20:], dhGenOK)
	full := append(make([]byte, 8), msg...)
	if !isDHGenOK(msg) || !isDHGenOK(full) {
		t.Fatal("dh_gen_ok not recognised")
	}
	other := append([]byte(nil), msg...)
	binary.LittleEndian.PutUint32(other[20:], 0x46dc1fb9) // dh_gen_retry
	encrypted := append([]byte(nil), msg...)
	encrypted[0] = 1 // an auth key id: an encrypted message
	for name, p := range map[string][]byte{"retry": other, "encrypted": encrypted, "short": msg[:20], "large": make([]byte, 1024)} {
		if isDHGenOK(p) {
			t.Errorf("%s taken for dh_gen_ok", name)
		}
	}
}
