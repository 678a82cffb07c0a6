#!/bin/sh
# Regenerates vectors.json, the known-answer vectors of package wire, from
# the reference algorithms of tgcalls and tdlib (see README.md), using only
# python3's standard library and the openssl command line for AES-256-CTR.
# It shares no code with the Go package.
#
#   cd telegram/wire/testdata && ./genvectors.sh > vectors.json
set -eu
cd "$(dirname "$0")"
exec python3 - <<'PY'
import hashlib, json, struct, subprocess

def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()

def sha1(b):
    return hashlib.sha1(b).digest()

def be32(v):
    return struct.pack(">I", v)

def le32(v):
    return struct.pack("<I", v)

def stretch(label, n):
    """Deterministic pseudo-random bytes: SHA-256(label || i) chained."""
    out = b""
    i = 0
    while len(out) < n:
        out += sha256(label.encode(), be32(i))
        i += 1
    return out[:n]

# ---- DH (tdlib td/mtproto/DhHandshake.cpp, td/telegram/DhCache.cpp) ----
P_HEX = ("c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac9"
         "25139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4a"
         "c8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17"
         "ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959"
         "d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b")
p = int(P_HEX, 16)
g = 3
margin = 1 << (2048 - 64)

def minimal(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")

def in_range(x):
    return 1 < x < p - 1 and margin <= x <= p - margin

# NewExponent: 256 random bytes XOR getDhConfig.random. Pick the draw whose
# g^a has a leading zero byte, so the minimal g_a is 255 bytes long and
# g_a_hash / the emoji differ from a padded encoding.
server_random = stretch("tgsip server random", 256)
i = 0
while True:
    rnd = stretch("tgsip caller random %d" % i, 256)
    a_bytes = bytes(x ^ y for x, y in zip(rnd, server_random))
    a = int.from_bytes(a_bytes, "big")
    ga = pow(g, a, p)
    if ga.bit_length() <= 2040 and in_range(ga):
        break
    i += 1
j = 0
while True:
    b_bytes = stretch("tgsip callee exponent %d" % j, 256)
    b = int.from_bytes(b_bytes, "big")
    gb = pow(g, b, p)
    if gb.bit_length() > 2040 and in_range(gb):
        break
    j += 1
key_int = pow(gb, a, p)
assert key_int == pow(ga, b, p)
key = key_int.to_bytes(256, "big")
ga_min = minimal(ga)
assert len(ga_min) < 256

# key_fingerprint: SHA1(key)[12:20] little-endian int64 (tdlib calc_key_id)
fp = struct.unpack("<q", sha1(key)[12:20])[0]

# Emoji (tdlib CallActor.cpp get_emojis_fingerprint, misc.cpp): the table is
# read from tdlib_emoji_table.txt, the escape sequences of misc.cpp verbatim.
table = []
for line in open("tdlib_emoji_table.txt", encoding="ascii"):
    line = line.strip()
    if line:
        table.append(line.encode("ascii").decode("unicode_escape"))
assert len(table) == 333

def emoji(k, g_a):
    h = sha256(k, g_a)
    idx = [(struct.unpack(">Q", h[8 * n:8 * n + 8])[0] & 0x7FFFFFFFFFFFFFFF) % 333 for n in range(4)]
    return idx, [table[n] for n in idx]

idx, emo = emoji(key, ga_min)
idx_padded, _ = emoji(key, ga.to_bytes(256, "big"))

dh = {
    "g": g,
    "p": P_HEX,
    "random": rnd.hex(),
    "server_random": server_random.hex(),
    "a": a_bytes.hex(),
    "b": b_bytes.hex(),
    "g_a": ga_min.hex(),
    "g_b": minimal(gb).hex(),
    "key": key.hex(),
    "key_fingerprint": fp,
    "g_a_hash": sha256(ga_min).hex(),
    "emoji_indices": idx,
    "emoji": emo,
    "emoji_indices_if_g_a_padded": idx_padded,
}

# ---- Signaling encryption (tgcalls EncryptedConnection.cpp, CryptoHelper.cpp) ----
def aes_ctr(k, iv, data):
    return subprocess.run(
        ["openssl", "enc", "-aes-256-ctr", "-nosalt", "-K", k.hex(), "-iv", iv.hex()],
        input=data, stdout=subprocess.PIPE, check=True).stdout

def x_send(sender_is_caller):
    # encryptPrepared: x = (isOutgoing ? 0 : 8) + 128 for Type::Signaling
    return 128 + (0 if sender_is_caller else 8)

def encrypt(k, sender_is_caller, body):
    x = x_send(sender_is_caller)
    msg_key = sha256(k[88 + x:88 + x + 32], body)[8:24]
    sa = sha256(msg_key, k[x:x + 36])
    sb = sha256(k[40 + x:40 + x + 36], msg_key)
    aes_key = sa[0:8] + sb[8:24] + sa[24:32]
    aes_iv = sb[0:4] + sa[8:16] + sb[24:28]
    packet = msg_key + aes_ctr(aes_key, aes_iv, body)
    return {"msg_key": msg_key.hex(), "aes_key": aes_key.hex(), "aes_iv": aes_iv.hex(), "packet": packet.hex()}

def custom(seq, msg):
    return be32(seq) + b"\x7f" + be32(len(msg)) + msg

def empty(seq):
    return be32(seq) + b"\xfe"

def ack(seq):
    return be32(seq) + b"\xff"

ACK = 1 << 30
m_caller = b'{"@type":"InitialSetup","fingerprints":[{"fingerprint":"AB:CD","hash":"sha-256","setup":"actpass"}],"pwd":"pwdpwdpwdpwdpwdpwdpwdpwd","renomination":true,"ufrag":"ufrg"}'
m_callee = b'{"@type":"Candidates","candidates":[{"sdpString":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host"}]}'

signaling = []
for sender_is_caller, body in ((True, custom(ACK | 1, m_caller)), (False, custom(ACK | 1, m_callee))):
    v = {"sender_is_caller": sender_is_caller, "body": body.hex()}
    v.update(encrypt(key, sender_is_caller, body))
    signaling.append(v)

# ---- Framing: one caller-side session (times in ms) ----
# Expected packets follow EncryptedConnection.cpp prepareForSendingRawMessage,
# prepareForSendingService, appendAdditionalMessages, processRawPacket and
# DelayIntervalsByType (resend >= 3000 ms after last send, forced service
# packet after 5000 ms, delayed acks after 5000 ms), with the package's
# documented choice of arming the forced resend when a lone message is sent.
m1 = b'{"@type":"InitialSetup","n":1}'
m2 = b'{"@type":"Candidates","n":2}'
n1 = b'{"@type":"InitialSetup","n":"callee"}'
steps = []
def send(t, msg, out_bodies):
    steps.append({"op": "send", "t": t, "msg": msg.hex(),
                  "out": [encrypt(key, True, o)["packet"] for o in out_bodies],
                  "out_bodies": [o.hex() for o in out_bodies]})
def recv(t, body, msgs, out_bodies):
    steps.append({"op": "recv", "t": t, "in": encrypt(key, False, body)["packet"], "in_body": body.hex(),
                  "msgs": [m.hex() for m in msgs],
                  "out": [encrypt(key, True, o)["packet"] for o in out_bodies],
                  "out_bodies": [o.hex() for o in out_bodies]})
def poll(t, out_bodies, next_t):
    steps.append({"op": "poll", "t": t, "next": next_t,
                  "out": [encrypt(key, True, o)["packet"] for o in out_bodies],
                  "out_bodies": [o.hex() for o in out_bodies]})

# t=0: nothing unacked, m1 goes alone with seq = counter 1 | requires-ack.
send(0, m1, [custom(ACK | 1, m1)])
# t=1000: the callee's first message; a new ack-requiring message is acked
# at once in a service packet [2 | no flags][0xFE] + ack echoing the full
# seq; m1 is not resent (last sent 1000 ms ago < 3000 ms).
recv(1000, custom(ACK | 1, n1), [n1], [empty(2) + ack(ACK | 1)])
# t=2000: m2 while m1 is unacked: m2 takes counter 3; the packet is a
# service packet with counter 4 carrying m1 and m2 with their own seqs,
# oldest first.
send(2000, m2, [empty(4) + custom(ACK | 1, m1) + custom(ACK | 3, m2)])
# t=2500: the callee acks m1 (full seq) and, uselessly, the bare counter 1,
# which matches nothing (tgcalls ackMyMessage compares full seqs).
recv(2500, empty(2) + ack(1) + ack(ACK | 1), [], [])
# t=2600: the callee resends n1 (it lost our ack): repeated, so not
# delivered again; the re-ack waits for the ack timer (2600 + 5000).
recv(2600, empty(3) + custom(ACK | 1, n1), [], [])
# t=5000: the forced resend armed at t=0 fires: m2 was last sent at 2000,
# 3000 ms ago, so it is due; the pending re-ack rides along. The next timer
# is the forced resend re-armed at 5000 + 5000.
poll(5000, [empty(5) + ack(ACK | 1) + custom(ACK | 3, m2)], 10000)
# t=6000: the callee acks m2; nothing is unacked, no timer is left.
recv(6000, empty(4) + ack(ACK | 3), [], [])
poll(6000, [], None)
# t=6500: another stale copy of n1: re-acked after 5000 ms, alone.
recv(6500, empty(5) + custom(ACK | 1, n1), [], [])
poll(11499, [], 11500)
poll(11500, [empty(6) + ack(ACK | 1)], None)
# t=12000: a callee packet holding its message 2 and an ack-less record:
# n2 is new (acked at once), the ack-less record is delivered once.
n2 = b'{"@type":"MediaState","muted":true}'
n3 = b'{"@type":"MediaState","muted":false}'
recv(12000, empty(6) + custom(ACK | 2, n2) + custom(7, n3), [n2, n3], [empty(7) + ack(ACK | 2)])
# A replayed packet (same counter) is rejected before its records are read.
steps.append({"op": "recv_error", "t": 12001, "in": steps[-1]["in"], "error": "replayed"})

framing = {"key_from": "dh", "caller_steps": steps}

# ---- Reflector datagrams (tgcalls v2/ReflectorPort.cpp) ----
peer_tag = bytes(range(0xa0, 0xb0))
own_random = 0x11223344
remote_random = 0xA1B2C3D4
own_tag = peer_tag[:12] + le32(own_random)
hello = own_tag + b"\xff" * 12 + b"\xfe\xff\xff\xff" + struct.pack(">Q", 123)
while len(hello) % 4:
    hello += b"\x00"
payload = b"hello"
def pad(b):
    return b + b"\x00" * ((-len(b)) % 4)
to_reflector = pad(peer_tag[:12] + le32(remote_random) + le32(own_random) + be32(len(payload)) + payload)
from_reflector = pad(own_tag + le32(remote_random) + be32(len(payload)) + payload)
reflector = {
    "peer_tag": peer_tag.hex(),
    "own_random": own_random,
    "remote_random": remote_random,
    "own_tag": own_tag.hex(),
    "hello": hello.hex(),
    "payload": payload.hex(),
    "to_reflector": to_reflector.hex(),
    "from_reflector": from_reflector.hex(),
    "hostname_server_id": 3,
    "hostname": "reflector-3-%d.reflector" % remote_random,
}

print(json.dumps({"dh": dh, "signaling": signaling, "framing": framing, "reflector": reflector},
                 indent=1, ensure_ascii=True))
PY
