// A stock GramJS client (npm package `telegram`, version pinned in
// package.json) against the emulated Telegram, configured only through
// GramJS's own hooks: the data center address (session.setDC) and the
// server's RSA public key (GramJS's key table, telegram/crypto/RSA
// _serverKeys, keyed by the key's fingerprint). Run by TestGramJS with one
// argument, a JSON object:
//   {port, pem, code, caller: {phone}, callee: {phone, password, username}}
// It prints one JSON line with what it saw; the Go test checks it.
"use strict";

const crypto = require("crypto");
const bigInt = require("big-integer");
const { TelegramClient, Api } = require("telegram");
const { MemorySession } = require("telegram/sessions");
const { Raw } = require("telegram/events");
const { ConnectionTCPObfuscated, ConnectionTCPFull } = require("telegram/network");
const { PromisedNetSockets } = require("telegram/extensions");
const RSA = require("telegram/crypto/RSA");
const { LAYER } = require("telegram/tl/AllTLObjects");

const cfg = JSON.parse(process.argv[2]);
const deadline = setTimeout(() => fail("timed out"), (cfg.timeoutSec || 120) * 1000);

function fail(msg) {
  process.stdout.write(JSON.stringify({ error: String(msg) }) + "\n");
  process.exit(1);
}

// TL "bytes" serialization (core.telegram.org/mtproto/serialize).
function tlBytes(b) {
  const head = b.length < 254 ? Buffer.from([b.length]) : Buffer.from([254, b.length & 255, (b.length >> 8) & 255, (b.length >> 16) & 255]);
  const body = Buffer.concat([head, b]);
  return Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
}

// The key's fingerprint: the lower 64 bits of SHA1(rsa_public_key n:bytes
// e:bytes), little endian, signed (core.telegram.org/mtproto/auth_key).
function registerServerKey(pem) {
  const jwk = crypto.createPublicKey(pem).export({ format: "jwk" });
  const n = Buffer.from(jwk.n, "base64url");
  const e = Buffer.from(jwk.e, "base64url");
  const sha = crypto.createHash("sha1").update(Buffer.concat([tlBytes(n), tlBytes(e)])).digest();
  const fp = sha.subarray(12, 20).readBigInt64LE(0);
  RSA._serverKeys.set(fp.toString(), { n: bigInt(n.toString("hex"), 16), e: parseInt(e.toString("hex"), 16) });
  return fp.toString();
}

// GramJS 2.26 on Node connects its main sender to the session's address
// but always to port 80 (TelegramClient.connect: `port: useWSS ? 443 :
// 80`), so the emulator's port reaches it through GramJS's networkSocket
// option, a socket class: this one connects to the emulator's port.
class EmulatorSocket extends PromisedNetSockets {
  connect(port, ip) {
    return super.connect(cfg.port, ip);
  }
}

function newClient(connection) {
  const c = new TelegramClient(new MemorySession(), 1, "emulator", {
    connection,
    networkSocket: EmulatorSocket,
    connectionRetries: 1,
    autoReconnect: false,
    useWSS: false,
  });
  c.setLogLevel("error");
  c.session.setDC(2, "127.0.0.1", cfg.port);
  return c;
}

async function login(c, phone, password) {
  await c.start({
    phoneNumber: async () => phone,
    phoneCode: async () => cfg.code,
    password: async () => password || "",
    onError: (err) => {
      throw err;
    },
  });
  const me = await c.getMe();
  return { id: me.id.toString(), username: me.username || "", phone: me.phone || "" };
}

// waitUpdate resolves with the first updatePhoneCall whose phoneCall
// matches pred.
function phoneCallWaiter(c) {
  const waiters = [];
  const seen = [];
  c.addEventHandler((u) => {
    if (!(u instanceof Api.UpdatePhoneCall)) return;
    seen.push(u.phoneCall);
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i].pred(u.phoneCall)) {
        waiters[i].resolve(u.phoneCall);
        waiters.splice(i, 1);
        return;
      }
    }
  }, new Raw({}));
  return (pred) =>
    new Promise((resolve) => {
      const hit = seen.find(pred);
      if (hit) return resolve(hit);
      waiters.push({ pred, resolve });
    });
}

const modPow = (b, e, m) => {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
};
const toBig = (buf) => BigInt("0x" + Buffer.from(buf).toString("hex"));
const toBuf = (x) => Buffer.from(x.toString(16).padStart(512, "0"), "hex");
const sha256 = (b) => crypto.createHash("sha256").update(b).digest();
// key_fingerprint: the lower 64 bits of SHA1(key) (core.telegram.org/api/end-to-end/voice-calls).
const fingerprint = (key) => crypto.createHash("sha1").update(key).digest().subarray(12, 20).readBigInt64LE(0).toString();

async function dhSecret(c) {
  const dh = await c.invoke(new Api.messages.GetDhConfig({ version: 0, randomLength: 256 }));
  const p = toBig(dh.p);
  const secret = toBig(crypto.randomBytes(256)) % (p - 1n);
  return { p, g: BigInt(dh.g), secret, pub: toBuf(modPow(BigInt(dh.g), secret, p)) };
}

const protocol = () =>
  new Api.PhoneCallProtocol({ udpP2p: true, udpReflector: true, minLayer: 65, maxLayer: 92, libraryVersions: ["9.0.0"] });

async function main() {
  const out = { layer: LAYER };
  out.fingerprint = registerServerKey(cfg.pem);

  const caller = newClient(ConnectionTCPObfuscated);
  const callee = newClient(ConnectionTCPFull);
  try {
    out.caller = await login(caller, cfg.caller.phone, "");
    out.callee = await login(callee, cfg.callee.phone, cfg.callee.password);

    const byPhone = await caller.invoke(new Api.contacts.ResolvePhone({ phone: cfg.callee.phone }));
    out.resolvePhone = byPhone.users[0].id.toString();
    const byName = await caller.invoke(new Api.contacts.ResolveUsername({ username: cfg.callee.username }));
    out.resolveUsername = byName.users[0].id.toString();
    const imported = await caller.invoke(
      new Api.contacts.ImportContacts({
        contacts: [new Api.InputPhoneContact({ clientId: bigInt(7), phone: cfg.callee.phone, firstName: "Callee", lastName: "" })],
      }),
    );
    out.imported = imported.imported.map((i) => i.userId.toString());
    const full = await caller.invoke(new Api.users.GetFullUser({ id: byName.users[0] }));
    out.phoneCallsAvailable = !!full.fullUser.phoneCallsAvailable;

    const calleeWait = phoneCallWaiter(callee);
    const callerWait = phoneCallWaiter(caller);
    const a = await dhSecret(caller);
    const requested = await caller.invoke(
      new Api.phone.RequestCall({
        userId: byName.users[0],
        randomId: crypto.randomInt(1 << 30),
        gAHash: sha256(a.pub),
        protocol: protocol(),
      }),
    );
    const callID = requested.phoneCall.id.toString();

    const incoming = await calleeWait((pc) => pc instanceof Api.PhoneCallRequested && pc.id.toString() === callID);
    const peer = new Api.InputPhoneCall({ id: incoming.id, accessHash: incoming.accessHash });
    await callee.invoke(new Api.phone.ReceivedCall({ peer }));
    const b = await dhSecret(callee);
    await callee.invoke(new Api.phone.AcceptCall({ peer, gB: b.pub, protocol: protocol() }));

    const accepted = await callerWait((pc) => pc instanceof Api.PhoneCallAccepted && pc.id.toString() === callID);
    const keyA = toBuf(modPow(toBig(accepted.gB), a.secret, a.p));
    const fpA = fingerprint(keyA);
    const confirmed = await caller.invoke(
      new Api.phone.ConfirmCall({
        peer: new Api.InputPhoneCall({ id: accepted.id, accessHash: accepted.accessHash }),
        gA: a.pub,
        keyFingerprint: bigInt(fpA),
        protocol: protocol(),
      }),
    );
    out.confirmedState = confirmed.phoneCall.className;

    const active = await calleeWait((pc) => pc instanceof Api.PhoneCall && pc.id.toString() === callID);
    const gaHashOK = sha256(Buffer.from(active.gAOrB)).equals(Buffer.from(incoming.gAHash));
    const keyB = toBuf(modPow(toBig(active.gAOrB), b.secret, b.p));
    out.call = {
      id: callID,
      fingerprintCaller: fpA,
      fingerprintCallee: fingerprint(keyB),
      fingerprintServer: active.keyFingerprint.toString(),
      gAHashOK: gaHashOK,
      connections: active.connections.length,
    };

    await caller.invoke(
      new Api.phone.DiscardCall({
        peer: new Api.InputPhoneCall({ id: accepted.id, accessHash: accepted.accessHash }),
        duration: 1,
        reason: new Api.PhoneCallDiscardReasonHangup(),
        connectionId: bigInt(0),
      }),
    );
    const ended = await calleeWait((pc) => pc instanceof Api.PhoneCallDiscarded && pc.id.toString() === callID);
    out.call.discardReason = ended.reason ? ended.reason.className : "";
  } finally {
    await Promise.allSettled([caller.destroy(), callee.destroy()]);
  }
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

main().catch((err) => fail(err && err.stack ? err.stack : err));
