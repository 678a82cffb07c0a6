package tgcall

import (
	"context"
	"math/big"
	"time"

	"github.com/tgsip/tgsip/telegram/wire"
)

// A prepared key is a Diffie-Hellman key pair made before a call needs it
// (Options.PrepareKeys), after Start and after each call's end: the DH group and 256 bytes of server randomness
// from its own messages.getDhConfig, the exponent a (our randomness XOR the
// server's, as NewExponent mixes them for every key) and g^a mod p. Placing
// a call then sends phone.requestCall (answering one, acceptCall) without
// waiting for a getDhConfig round trip and a 2048-bit modular
// exponentiation (3–7 ms of CPU on the 2-vCPU test machine): for a gateway
// that is delay the SIP caller would hear before anything rings. Each key is
// used by one call only, like the one fetched per call (tdlib CallActor,
// tdesktop Calls::Call both fetch the config per call; the key is secret
// all the same, only when it was made moves).
type preparedKey struct {
	cfg    wire.DHConfig
	secret *big.Int
	public []byte
	at     time.Time
}

// preparedTTL bounds a prepared key's age: Telegram versions its DH group
// (getDhConfig's version), so a key made long ago might be of a group it
// no longer sends; the call path then fetches the config as usual.
const preparedTTL = 10 * time.Minute

// prepareTimeout bounds the background getDhConfig.
const prepareTimeout = 30 * time.Second

// prepareKey makes a key pair in the background, unless keys are not
// wanted, one is ready and fresh, one is being made, or the client is
// closed. The goroutine belongs to the client: Close cancels and waits
// for it.
func (c *Client) prepareKey() {
	if !c.opts.PrepareKeys {
		return
	}
	c.mu.Lock()
	if c.closed || c.preparing || (c.prepared != nil && time.Since(c.prepared.at) < preparedTTL) {
		c.mu.Unlock()
		return
	}
	c.preparing = true
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		k, err := c.makeKey()
		c.mu.Lock()
		c.preparing = false
		if err == nil && !c.closed {
			c.prepared = k
		}
		c.mu.Unlock()
		if err != nil && c.life.Err() == nil {
			// The next call fetches its config itself, and its end
			// starts another attempt.
			c.log.Debug("DH key not prepared", "err", err)
		}
	}()
}

func (c *Client) makeKey() (*preparedKey, error) {
	ctx, cancel := context.WithTimeout(c.life, prepareTimeout)
	defer cancel()
	cfg, random, err := c.dh.get(ctx, c.api)
	if err != nil {
		return nil, err
	}
	secret, err := wire.NewExponent(c.opts.Random, random)
	if err != nil {
		return nil, err
	}
	return &preparedKey{cfg: cfg, secret: secret, public: wire.Public(cfg, secret), at: time.Now()}, nil
}

// takeKey hands the prepared key pair to one call (nil when none is ready
// and fresh). The next is prepared when a call ends (teardown), not now:
// its exponentiation would compete for the CPU with the call being set
// up, whose ringing and answer a SIP caller waits for.
func (c *Client) takeKey() *preparedKey {
	c.mu.Lock()
	k := c.prepared
	c.prepared = nil
	c.mu.Unlock()
	if k == nil || time.Since(k.at) >= preparedTTL {
		return nil
	}
	return k
}

// KeyReady reports whether a prepared key pair waits for the next call
// (Options.PrepareKeys): status displays and tests.
func (c *Client) KeyReady() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prepared != nil && time.Since(c.prepared.at) < preparedTTL
}
