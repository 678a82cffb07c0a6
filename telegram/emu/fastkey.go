package emu

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"net"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/crypto"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/proto"
	"github.com/gotd/td/session"
	"github.com/gotd/td/transport"
)

// NewSession creates an auth key with the emulator by a real MTProto key
// exchange over its listener (core.telegram.org/mtproto/auth_key, steps
// 1–9: req_pq_multi, req_DH_params, set_client_DH_params), the same the
// server runs with every client, and returns it as a session a gotd client
// loads (session.Loader) to connect without an exchange of its own.
//
// It is the emulator's fast path for tests and demos that need many
// accounts: a client's exchange costs it ~0.75 s of CPU, nearly all in
// checks it must make of an unknown server, factoring pq (the proof of
// work) and testing dh_prime for a safe prime (research/emulator.md §3).
// Here the client side is the emulator's own, so pq is factored with
// 64-bit arithmetic and the emulator's dh_prime is trusted; what is left
// is two 2048-bit exponentiations and an RSA encryption, a few ms. The
// session is not logged in: log it in as any client (Network.Login).
//
// The exchange runs through the listener like any client's, so it is
// covered by the guard around tgtest's key map (keyguard.go) and may
// overlap other clients' requests.
func (n *Network) NewSession(ctx context.Context) (*session.Data, error) {
	addr := n.Addr()
	if !addr.IsValid() {
		return nil, errors.New("emu: not started")
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("emu: new session: %w", err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn, err := transport.Intermediate.Handshake(raw)
	if err != nil {
		return nil, fmt.Errorf("emu: new session: %w", err)
	}
	k, salt, err := n.exchange(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("emu: new session: %w", err)
	}
	return &session.Data{
		DC:        DC,
		Addr:      addr.String(),
		AuthKey:   k.Value[:],
		AuthKeyID: k.ID[:],
		Salt:      salt,
	}, nil
}

// exchange is the client side of the key exchange with n's server.
func (n *Network) exchange(ctx context.Context, conn transport.Conn) (crypto.AuthKey, int64, error) {
	x := &plainConn{conn: conn}
	nonce, err := crypto.RandInt128(rand.Reader)
	if err != nil {
		return crypto.AuthKey{}, 0, err
	}
	var res mt.ResPQ
	if err := x.call(ctx, &mt.ReqPqMultiRequest{Nonce: nonce}, &res); err != nil {
		return crypto.AuthKey{}, 0, fmt.Errorf("req_pq_multi: %w", err)
	}
	if res.Nonce != nonce {
		return crypto.AuthKey{}, 0, errors.New("resPQ: nonce mismatch")
	}
	pub := &n.key.PublicKey
	fingerprint := crypto.RSAFingerprint(pub)
	found := false
	for _, f := range res.ServerPublicKeyFingerprints {
		found = found || f == fingerprint
	}
	if !found {
		return crypto.AuthKey{}, 0, errors.New("resPQ: the emulator's key is not offered")
	}
	pq := new(big.Int).SetBytes(res.Pq)
	if !pq.IsUint64() {
		return crypto.AuthKey{}, 0, errors.New("resPQ: pq over 64 bits")
	}
	p, q := factor(pq.Uint64())
	if p == 1 {
		return crypto.AuthKey{}, 0, fmt.Errorf("resPQ: pq %d not factored", pq.Uint64())
	}
	pb, qb := new(big.Int).SetUint64(p).Bytes(), new(big.Int).SetUint64(q).Bytes()
	newNonce, err := crypto.RandInt256(rand.Reader)
	if err != nil {
		return crypto.AuthKey{}, 0, err
	}
	var b bin.Buffer
	inner := mt.PQInnerDataDC{Pq: res.Pq, P: pb, Q: qb, Nonce: nonce, ServerNonce: res.ServerNonce, NewNonce: newNonce, DC: DC}
	if err := inner.Encode(&b); err != nil {
		return crypto.AuthKey{}, 0, err
	}
	encrypted, err := crypto.RSAPad(b.Copy(), pub, rand.Reader)
	if err != nil {
		return crypto.AuthKey{}, 0, err
	}
	var params mt.ServerDHParamsBox
	if err := x.call(ctx, &mt.ReqDHParamsRequest{
		Nonce: nonce, ServerNonce: res.ServerNonce, P: pb, Q: qb,
		PublicKeyFingerprint: fingerprint, EncryptedData: encrypted,
	}, &params); err != nil {
		return crypto.AuthKey{}, 0, fmt.Errorf("req_DH_params: %w", err)
	}
	ok, isOK := params.Server_DH_Params.(*mt.ServerDHParamsOk)
	if !isOK || ok.Nonce != nonce || ok.ServerNonce != res.ServerNonce {
		return crypto.AuthKey{}, 0, fmt.Errorf("req_DH_params: answer %T", params.Server_DH_Params)
	}
	aesKey, aesIV := crypto.TempAESKeys(newNonce.BigInt(), res.ServerNonce.BigInt())
	plain, err := crypto.DecryptExchangeAnswer(ok.EncryptedAnswer, aesKey, aesIV)
	if err != nil {
		return crypto.AuthKey{}, 0, err
	}
	var dh mt.ServerDHInnerData
	if err := dh.Decode(&bin.Buffer{Buf: plain}); err != nil {
		return crypto.AuthKey{}, 0, fmt.Errorf("server_DH_inner_data: %w", err)
	}
	// The emulator's own dh_prime: no safe-prime test (the cost this
	// path exists to avoid); the cheap range checks stay.
	prime := new(big.Int).SetBytes(dh.DhPrime)
	g := big.NewInt(int64(dh.G))
	gA := new(big.Int).SetBytes(dh.GA)
	secret, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), crypto.RSAKeyBits))
	if err != nil {
		return crypto.AuthKey{}, 0, err
	}
	gB := new(big.Int).Exp(g, secret, prime)
	if err := crypto.CheckDHParams(prime, g, gA, gB); err != nil {
		return crypto.AuthKey{}, 0, err
	}
	b.Reset()
	if err := (&mt.ClientDHInnerData{Nonce: nonce, ServerNonce: res.ServerNonce, GB: gB.Bytes()}).Encode(&b); err != nil {
		return crypto.AuthKey{}, 0, err
	}
	sealed, err := crypto.EncryptExchangeAnswer(rand.Reader, b.Copy(), aesKey, aesIV)
	if err != nil {
		return crypto.AuthKey{}, 0, err
	}
	var answer mt.SetClientDHParamsAnswerBox
	if err := x.call(ctx, &mt.SetClientDHParamsRequest{Nonce: nonce, ServerNonce: res.ServerNonce, EncryptedData: sealed}, &answer); err != nil {
		return crypto.AuthKey{}, 0, fmt.Errorf("set_client_DH_params: %w", err)
	}
	var key crypto.Key
	new(big.Int).Exp(gA, secret, prime).FillBytes(key[:])
	auth := key.WithID()
	gen, isGen := answer.Set_client_DH_params_answer.(*mt.DhGenOk)
	if !isGen || gen.NewNonceHash1 != crypto.NonceHash1(newNonce, key) {
		return crypto.AuthKey{}, 0, fmt.Errorf("set_client_DH_params: answer %T", answer.Set_client_DH_params_answer)
	}
	return auth, crypto.ServerSalt(newNonce, res.ServerNonce), nil
}

// plainConn sends and receives the exchange's unencrypted messages.
type plainConn struct {
	conn transport.Conn
	b    bin.Buffer
}

func (x *plainConn) call(ctx context.Context, req bin.Encoder, res bin.Decoder) error {
	x.b.Reset()
	if err := req.Encode(&x.b); err != nil {
		return err
	}
	msg := proto.UnencryptedMessage{
		MessageID:   int64(proto.NewMessageID(time.Now(), proto.MessageFromClient)),
		MessageData: x.b.Copy(),
	}
	x.b.Reset()
	if err := msg.Encode(&x.b); err != nil {
		return err
	}
	if err := x.conn.Send(ctx, &x.b); err != nil {
		return err
	}
	x.b.Reset()
	if err := x.conn.Recv(ctx, &x.b); err != nil {
		return err
	}
	var in proto.UnencryptedMessage
	if err := in.Decode(&x.b); err != nil {
		return err
	}
	return res.Decode(&bin.Buffer{Buf: in.MessageData})
}

// factor splits pq, a product of two primes below 2^32 (the exchange's
// proof of work), into p ≤ q with Pollard's rho in 64-bit arithmetic;
// p = 1 when it fails.
func factor(pq uint64) (p, q uint64) {
	if pq%2 == 0 {
		return 2, pq / 2
	}
	mulmod := func(a, b uint64) uint64 {
		hi, lo := bits.Mul64(a, b)
		_, r := bits.Div64(hi%pq, lo, pq)
		return r
	}
	for c := uint64(1); c < 20; c++ {
		x, y, d := uint64(2), uint64(2), uint64(1)
		f := func(v uint64) uint64 { return (mulmod(v, v) + c) % pq }
		for d == 1 {
			x = f(x)
			y = f(f(y))
			diff := x - y
			if x < y {
				diff = y - x
			}
			d = gcd(diff, pq)
		}
		if d != pq {
			p, q = d, pq/d
			if p > q {
				p, q = q, p
			}
			return p, q
		}
	}
	return 1, pq
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
