"""Regenerate ecdsa-p256.json: ECDSA P-256 / SHA-256 vectors from RFC 6979 appendix A.2.5,
checked, plus invalid signatures built from them.

    .cache/pyvenv/bin/python packages/verify/src/vectors/generate-ecdsa-p256.py \
        > packages/verify/src/vectors/ecdsa-p256.json

The RFC values are transcribed below. They are kept only if pyca/cryptography derives (Ux, Uy)
from x, k*G gives r, s = k^-1 (H(m) + x*r) mod n, RFC 6979 deterministic signing in
cryptography reproduces (r, s), and both cryptography and securesystemslib (the code python-tuf
verifies "ecdsa-sha2-nistp256" signatures with) accept the DER signature. Every invalid case
must be rejected by both.
"""

import hashlib
import json
import sys

import cryptography
import securesystemslib
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature, SSlibKey

CRYPTOGRAPHY_VERSION = "50.0.2"
SSLIB_VERSION = "1.6.0"
if cryptography.__version__ != CRYPTOGRAPHY_VERSION or securesystemslib.__version__ != SSLIB_VERSION:
    sys.exit(
        f"need cryptography {CRYPTOGRAPHY_VERSION} and securesystemslib {SSLIB_VERSION}, found "
        f"{cryptography.__version__} and {securesystemslib.__version__}"
    )

# P-256 group order.
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# RFC 6979 appendix A.2.5, "ECDSA, 256 Bits (Prime Field)", as printed there.
RFC6979_X = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
RFC6979_UX = 0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6
RFC6979_UY = 0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299
RFC6979_SHA256 = [
    {
        "message": b"sample",
        "k": 0xA6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60,
        "r": 0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716,
        "s": 0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8,
    },
    {
        "message": b"test",
        "k": 0xD16B6AE827F17175E040871A1C7EC3500192C4C92677336EC2537ACAEE0008E0,
        "r": 0xF1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367,
        "s": 0x019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083,
    },
]

PRIVATE_KEY = ec.derive_private_key(RFC6979_X, ec.SECP256R1())
PUBLIC_KEY = PRIVATE_KEY.public_key()
PUBLIC_KEY_PEM = PUBLIC_KEY.public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
).decode()
TUF_KEY = SSlibKey.from_crypto(PUBLIC_KEY)


def hex32(value):
    # 32 bytes big-endian; longer only for an out-of-range value that needs it (s + n).
    return value.to_bytes(max(32, (value.bit_length() + 7) // 8), "big").hex()


def der_length(length):
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_integer(value, extra_leading_zero=False):
    # Minimal two's-complement big-endian: one 0x00 only when the top bit would be set.
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    if extra_leading_zero:
        body = b"\x00" + body
    return b"\x02" + der_length(len(body)) + body


def der_signature(r, s, *, r_extra_zero=False, s_extra_zero=False):
    content = der_integer(r, r_extra_zero) + der_integer(s, s_extra_zero)
    return b"\x30" + der_length(len(content)) + content


def cryptography_accepts(message, signature):
    try:
        PUBLIC_KEY.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def securesystemslib_accepts(message, signature):
    try:
        TUF_KEY.verify_signature(Signature(TUF_KEY.keyid, signature.hex()), message)
        return True
    except UnverifiedSignatureError:
        return False


def check_rfc_vector(vector):
    message, k, r, s = vector["message"], vector["k"], vector["r"], vector["s"]
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")  # 256-bit hash: no truncation
    problems = []
    if ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers().x % N != r:
        problems.append("r != (k*G).x mod n")
    if pow(k, -1, N) * (e + RFC6979_X * r) % N != s:
        problems.append("s != k^-1 (H(m) + x*r) mod n")
    deterministic = PRIVATE_KEY.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    if decode_dss_signature(deterministic) != (r, s):
        problems.append("cryptography's RFC 6979 signing gives a different (r, s)")
    signature = der_signature(r, s)
    if signature != encode_dss_signature(r, s):
        problems.append("DER encoding differs from cryptography's")
    if not cryptography_accepts(message, signature):
        problems.append("cryptography rejects it")
    if not securesystemslib_accepts(message, signature):
        problems.append("securesystemslib rejects it")
    return problems


def entry(case, message, signature, r, s, valid, reason):
    return {
        "case": case,
        "public_key_pem": PUBLIC_KEY_PEM,
        "message_hex": message.hex(),
        "signature_der_hex": signature.hex(),
        "r_hex": hex32(r),
        "s_hex": hex32(s),
        "valid": valid,
        "reason": reason,
    }


def main():
    numbers = PUBLIC_KEY.public_numbers()
    if (numbers.x, numbers.y) != (RFC6979_UX, RFC6979_UY):
        sys.exit("public key derived from x differs from RFC 6979 (Ux, Uy)")
    if TUF_KEY.keyval["public"] != PUBLIC_KEY_PEM or TUF_KEY.scheme != "ecdsa-sha2-nistp256":
        sys.exit("securesystemslib would carry this key differently")

    vectors = []
    for vector in RFC6979_SHA256:
        problems = check_rfc_vector(vector)
        if problems:
            sys.exit(f"RFC 6979 {vector['message']!r} dropped: {'; '.join(problems)}")
        item = entry(
            f"RFC 6979 A.2.5 SHA-256, message \"{vector['message'].decode()}\"",
            vector["message"],
            der_signature(vector["r"], vector["s"]),
            vector["r"],
            vector["s"],
            True,
            "published vector",
        )
        item["k_hex"] = hex32(vector["k"])
        vectors.append(item)

    sample, test = RFC6979_SHA256
    m, r, s = sample["message"], sample["r"], sample["s"]
    tm, tr, ts = test["message"], test["r"], test["s"]
    vectors.append(
        entry(
            "sample with s replaced by n - s (the low-S twin)",
            m,
            der_signature(r, N - s),
            r,
            N - s,
            True,
            "ECDSA verification accepts both s and n - s; neither RFC 6979, OpenSSL nor "
            "securesystemslib imposes a low-S rule (the RFC's own sample s is the high one)",
        )
    )
    invalid = [
        ("signature over a different message", b"samplf", der_signature(r, s), r, s,
         "sample's signature checked against the message \"samplf\""),
        ("test signature presented for sample", m, der_signature(tr, ts), tr, ts,
         "a valid signature by the same key over another message (\"test\")"),
        ("r modified", m, der_signature(r ^ 1, s), r ^ 1, s, "lowest bit of r flipped"),
        ("s modified", m, der_signature(r, s ^ 1), r, s ^ 1, "lowest bit of s flipped"),
        ("DER with trailing garbage", m, der_signature(r, s) + b"\x00", r, s,
         "valid DER signature followed by one 0x00 byte"),
        ("DER non-minimal integer (r with an extra leading 0x00)", m,
         der_signature(r, s, r_extra_zero=True), r, s,
         "r is encoded as 00 00 ef...: DER requires the shortest two's-complement form"),
        ("DER non-minimal integer (s with a leading 0x00)", tm,
         der_signature(tr, ts, s_extra_zero=True), tr, ts,
         "test's s (01 9f...) needs no leading zero; 00 01 9f... is not DER"),
        ("DER long-form length", m,
         b"\x30\x81" + der_signature(r, s)[1:], r, s,
         "SEQUENCE length 0x46 written in long form (81 46): BER, not DER"),
        ("raw r || s instead of DER", m, bytes.fromhex(hex32(r) + hex32(s)), r, s,
         "the 64-byte IEEE P1363 form; TUF ecdsa signatures are DER"),
        ("r = 0", m, der_signature(0, s), 0, s, "r must be in [1, n-1]"),
        ("s = 0", m, der_signature(r, 0), r, 0, "s must be in [1, n-1]"),
        ("r = n", m, der_signature(N, s), N, s, "r must be in [1, n-1]"),
        ("s = n", m, der_signature(r, N), r, N, "s must be in [1, n-1]"),
        ("s + n (test vector)", tm, der_signature(tr, ts + N), tr, ts + N,
         "congruent to test's valid s but not below n; a verifier that reduces s mod n "
         "accepts it"),
    ]
    for case, message, signature, rr, ss, reason in invalid:
        vectors.append(entry(case, message, signature, rr, ss, False, reason))

    for item in vectors:
        message = bytes.fromhex(item["message_hex"])
        signature = bytes.fromhex(item["signature_der_hex"])
        for name, accepts in (("cryptography", cryptography_accepts),
                              ("securesystemslib", securesystemslib_accepts)):
            if accepts(message, signature) != item["valid"]:
                sys.exit(f"{name} disagrees with valid={item['valid']} for {item['case']}")

    document = {
        "source": (
            "RFC 6979 appendix A.2.5 (ECDSA P-256, key x/Ux/Uy and the SHA-256 signatures of "
            "\"sample\" and \"test\": k, r, s), values as also transcribed in bcgit/bc-java "
            "core/src/test/java/org/bouncycastle/crypto/test/DeterministicDSATest.java; PEM, DER "
            "and the invalid cases made with pyca/cryptography "
            f"{CRYPTOGRAPHY_VERSION} by packages/verify/src/vectors/generate-ecdsa-p256.py, which "
            "writes this whole file."
        ),
        "notes": (
            "One key for every vector (see key; private_key_hex is x). public_key_pem is the "
            "SubjectPublicKeyInfo PEM that securesystemslib puts in keyval.public for a TUF "
            "\"ecdsa\" key with scheme \"ecdsa-sha2-nistp256\"; tuf_keyid is its default "
            "keyid. The signed data is the message bytes (message_hex); SHA-256 is applied by "
            "the verifier. signature_der_hex is the DER ECDSA-Sig-Value, which is what TUF "
            "signatures carry (as hex in \"sig\"); r_hex and s_hex are the integers it encodes, "
            "as 32-byte big-endian hex (33 bytes for s + n), so for the encoding cases (trailing garbage, "
            "non-minimal integer, long-form length, raw r || s) they are the valid values and "
            "only the encoding is wrong. k_hex is the RFC's nonce. Each valid flag was checked "
            "against pyca/cryptography (OpenSSL) and securesystemslib "
            f"{SSLIB_VERSION} SSlibKey.verify_signature, which agree on every case. The RFC's "
            "\"sample\" signature has s > n/2 (high-S), so a verifier that enforces low-S, as "
            "some libraries do by default, rejects a signature python-tuf accepts."
        ),
        "key": {
            "private_key_hex": hex32(RFC6979_X),
            "public_key_x_hex": hex32(RFC6979_UX),
            "public_key_y_hex": hex32(RFC6979_UY),
            "public_key_pem": PUBLIC_KEY_PEM,
            "tuf_keytype": TUF_KEY.keytype,
            "tuf_scheme": TUF_KEY.scheme,
            "tuf_keyid": TUF_KEY.keyid,
        },
        "vectors": vectors,
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
