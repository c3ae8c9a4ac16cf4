"""Regenerate ed25519-rfc8032.json: the RFC 8032 section 7.1 Ed25519 vectors, checked, plus
signatures a strict RFC 8032 verifier must reject.

    .cache/pyvenv/bin/python packages/verify/src/vectors/generate-ed25519-rejects.py \
        > packages/verify/src/vectors/ed25519-rfc8032.json

The five RFC vectors are transcribed below. Each is kept only if pyca/cryptography (OpenSSL)
derives the same public key from the secret key, reproduces the signature (Ed25519 signing is
deterministic) and verifies it, and the strict verifier in this file accepts it.

The strict_rejects are built with plain integer arithmetic on edwards25519 (no library), then
classified by two verifiers written out below from the specifications:
  strict - RFC 8032 section 5.1.7, with point decoding per section 5.1.3 (y must be < p; x = 0
           with the sign bit set is an error) and 0 <= S < L;
  zip215 - ZIP 215 (https://zips.z.cash/zip-0215): A and R may be non-canonical encodings
           (y >= p, x = 0 with sign bit set), S must still be < L, cofactored equation.
Every reject must fail strict verification; what pyca/cryptography (OpenSSL) says is recorded.
"""

import hashlib
import json
import sys

import cryptography
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CRYPTOGRAPHY_VERSION = "50.0.2"
if cryptography.__version__ != CRYPTOGRAPHY_VERSION:
    sys.exit(f"need cryptography {CRYPTOGRAPHY_VERSION}, found {cryptography.__version__}")

# RFC 8032 section 7.1, hex as printed there (whitespace and line breaks removed).
RFC8032_VECTORS = [
    {
        "name": "TEST 1",
        "secret_key_hex": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "public_key_hex": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "message_hex": "",
        "signature_hex": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    {
        "name": "TEST 2",
        "secret_key_hex": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "public_key_hex": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "message_hex": "72",
        "signature_hex": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
    {
        "name": "TEST 3",
        "secret_key_hex": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "public_key_hex": "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "message_hex": "af82",
        "signature_hex": "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    },
    {
        "name": "TEST 1024",
        "secret_key_hex": "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "public_key_hex": "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        "message_hex": "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
        "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
        "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
        "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
        "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
        "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
        "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
        "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
        "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
        "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
        "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
        "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
        "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
        "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
        "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
        "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
        "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
        "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
        "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
        "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
        "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
        "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
        "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
        "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
        "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
        "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
        "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
        "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
        "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
        "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
        "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
        "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
        "signature_hex": "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
        "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    },
    {
        "name": "TEST SHA(abc)",
        "secret_key_hex": "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "public_key_hex": "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        # the message is SHA-512("abc")
        "message_hex": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "signature_hex": "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    },
]

# ---- edwards25519 in plain integers (RFC 8032 sections 5.1 and 6) ----

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def point_add(p1, p2):
    # Extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, x*y = T/Z; complete formulas.
    a = (p1[1] - p1[0]) * (p2[1] - p2[0]) % P
    b = (p1[1] + p1[0]) * (p2[1] + p2[0]) % P
    c = 2 * p1[3] * p2[3] * D % P
    d = 2 * p1[2] * p2[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


IDENTITY = (0, 1, 1, 0)


def scalar_mul(s, point):
    result = IDENTITY
    while s > 0:
        if s & 1:
            result = point_add(result, point)
        point = point_add(point, point)
        s >>= 1
    return result


def point_equal(p1, p2):
    return (p1[0] * p2[2] - p2[0] * p1[2]) % P == 0 and (p1[1] * p2[2] - p2[1] * p1[2]) % P == 0


def recover_x(y, sign):
    """x with the given low bit for y, or None when y is not on the curve."""
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return 0 if sign == 0 else None
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    return P - x if (x & 1) != sign else x


BASE = (lambda y: (recover_x(y, 0), y, 1, recover_x(y, 0) * y % P))(4 * pow(5, P - 2, P) % P)


def compress(point):
    zinv = pow(point[2], P - 2, P)
    x, y = point[0] * zinv % P, point[1] * zinv % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def decompress(encoded, mode):
    """RFC 8032 section 5.1.3 decoding ("strict"), or ZIP 215's relaxed one ("zip215")."""
    value = int.from_bytes(encoded, "little")
    sign, y = value >> 255, value & ((1 << 255) - 1)
    if y >= P:
        if mode == "strict":
            return None  # 5.1.3 step 1: y must be canonical
        y -= P
    if mode == "strict":
        x = recover_x(y, sign)  # 5.1.3 step 4: x = 0 with sign bit 1 fails
    else:
        x = recover_x(y, 0)
        if x is not None and sign == 1:
            x = (P - x) % P  # -0 is 0: the sign bit of x = 0 is ignored
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def sha512_mod_l(*parts):
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % L


def verify(public_key, message, signature, mode):
    """RFC 8032 5.1.7 (mode "strict") or ZIP 215 (mode "zip215"); both use the cofactored
    equation [8][S]B = [8]R + [8][k]A and both require S < L."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = decompress(public_key, mode)
    r = decompress(signature[:32], mode)
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = sha512_mod_l(signature[:32], public_key, message)
    left = scalar_mul(8, scalar_mul(s, BASE))
    right = scalar_mul(8, point_add(r, scalar_mul(k, a)))
    return point_equal(left, right)


def secret_scalar(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a


# ---- checks and constructions ----


def openssl_verifies(public_key, message, signature):
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except InvalidSignature:
        return False


def check_rfc_vector(vector):
    seed = bytes.fromhex(vector["secret_key_hex"])
    public_key = bytes.fromhex(vector["public_key_hex"])
    message = bytes.fromhex(vector["message_hex"])
    signature = bytes.fromhex(vector["signature_hex"])
    private = Ed25519PrivateKey.from_private_bytes(seed)
    derived = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    problems = []
    if derived != public_key:
        problems.append(f"derived public key {derived.hex()}")
    if compress(scalar_mul(secret_scalar(seed), BASE)) != public_key:
        problems.append("integer arithmetic derives a different public key")
    if private.sign(message) != signature:
        problems.append("cryptography signs differently")
    if not openssl_verifies(public_key, message, signature):
        problems.append("cryptography does not verify it")
    if not verify(public_key, message, signature, "strict"):
        problems.append("strict verifier rejects it")
    if not verify(public_key, message, signature, "zip215"):
        problems.append("zip215 verifier rejects it")
    return problems


def encode_y(y, sign=0):
    return int.to_bytes(y | (sign << 255), 32, "little")


def build_rejects(test1):
    seed = bytes.fromhex(test1["secret_key_hex"])
    public_key = bytes.fromhex(test1["public_key_hex"])
    message = bytes.fromhex(test1["message_hex"])
    signature = bytes.fromhex(test1["signature_hex"])
    a = secret_scalar(seed)
    rejects = []

    s = int.from_bytes(signature[32:], "little")
    rejects.append(
        {
            "name": "TEST 1 with S + L (non-canonical S)",
            "public_key_hex": public_key.hex(),
            "message_hex": message.hex(),
            "signature_hex": (signature[:32] + int.to_bytes(s + L, 32, "little")).hex(),
            "reason": (
                "RFC 8032 5.1.7 step 1: S must satisfy 0 <= S < L. S + L is congruent to S, so "
                "the group equation still holds; a verifier that omits the range check, reduces "
                "S mod L, or only checks the top three bits of S (the original ref10 check, "
                f"S < 2^253; here S + L {'<' if s + L < 2**253 else '>='} 2^253) accepts it. "
                "ZIP 215 also requires S < L."
            ),
        }
    )

    # R = identity, encoded with y = p + 1 instead of y = 1. With R = O the equation is
    # [S]B = [k]A, so S = k * a mod L, where k hashes the R bytes exactly as sent.
    def identity_r_signature(r_bytes):
        k = sha512_mod_l(r_bytes, public_key, message)
        return r_bytes + int.to_bytes(k * a % L, 32, "little")

    rejects.append(
        {
            "name": "TEST 1 key, R = identity encoded with y = p + 1 (non-canonical R)",
            "public_key_hex": public_key.hex(),
            "message_hex": message.hex(),
            "signature_hex": identity_r_signature(encode_y(P + 1)).hex(),
            "reason": (
                "RFC 8032 5.1.3 step 1: a y coordinate >= p fails decoding. ZIP 215 reduces y mod "
                "p, decodes R as the identity and accepts."
            ),
        }
    )
    rejects.append(
        {
            "name": "TEST 1 key, R = identity with the x sign bit set (non-canonical R)",
            "public_key_hex": public_key.hex(),
            "message_hex": message.hex(),
            "signature_hex": identity_r_signature(encode_y(1, sign=1)).hex(),
            "reason": (
                "RFC 8032 5.1.3 step 4: x = 0 with x_0 = 1 fails decoding. ZIP 215 ignores the "
                "sign of x = 0, decodes R as the identity and accepts."
            ),
        }
    )

    # A = identity encoded with y = p + 1. With A = O the equation is [S]B = R for any
    # message, so any (R = [r]B, S = r) verifies under a relaxed decoder.
    r = sha512_mod_l(b"cairn non-canonical A")
    rejects.append(
        {
            "name": "public key = identity encoded with y = p + 1 (non-canonical A)",
            "public_key_hex": encode_y(P + 1).hex(),
            "message_hex": message.hex(),
            "signature_hex": (compress(scalar_mul(r, BASE)) + int.to_bytes(r, 32, "little")).hex(),
            "reason": (
                "RFC 8032 5.1.3 step 1: the public key's y >= p fails decoding. ZIP 215 decodes "
                "it as the identity (a small-order key that 'signs' every message) and accepts."
            ),
        }
    )

    for reject in rejects:
        pub = bytes.fromhex(reject["public_key_hex"])
        msg = bytes.fromhex(reject["message_hex"])
        sig = bytes.fromhex(reject["signature_hex"])
        if verify(pub, msg, sig, "strict"):
            raise AssertionError(f"strict verifier accepts {reject['name']}")
        reject["zip215_valid"] = verify(pub, msg, sig, "zip215")
        reject["cryptography_valid"] = openssl_verifies(pub, msg, sig)
    return rejects


def main():
    vectors = []
    for vector in RFC8032_VECTORS:
        problems = check_rfc_vector(vector)
        if problems:
            sys.exit(f"{vector['name']} dropped: {'; '.join(problems)}")
        vectors.append(vector)

    document = {
        "source": (
            "vectors: RFC 8032 section 7.1 (Ed25519: TEST 1, TEST 2, TEST 3, TEST 1024, "
            "TEST SHA(abc)), hex transcribed from bcgit/bc-java "
            "core/src/test/java/org/bouncycastle/math/ec/rfc8032/test/Ed25519Test.java "
            "(commit 14edd32fc6832c765912c1a1e53351425c941d3e), which copies the RFC; "
            "each re-derived and re-signed with pyca/cryptography "
            f"{CRYPTOGRAPHY_VERSION}. strict_rejects: constructed by "
            "packages/verify/src/vectors/generate-ed25519-rejects.py (integer arithmetic on "
            "edwards25519), which also writes this whole file."
        ),
        "notes": (
            "All hex is lowercase; secret_key_hex is the 32-byte RFC 8032 seed. Every vector: "
            "pyca/cryptography derives public_key_hex from secret_key_hex, reproduces "
            "signature_hex and verifies it; so does the script's own integer arithmetic. "
            "strict_rejects must be rejected by a verifier that follows RFC 8032 5.1.7 with the "
            "decoding rules of 5.1.3. zip215_valid says what a ZIP 215 verifier (non-canonical A "
            "and R allowed, S < L required, cofactored equation) returns, computed by the "
            "script; cryptography_valid is what pyca/cryptography "
            f"{CRYPTOGRAPHY_VERSION} (OpenSSL) returns: it rejects non-canonical S and R but "
            "accepts the non-canonical public key encoding, so it is not a strict reference for "
            "A. Construction: "
            "L = 2^252 + 27742317777372353535851937790883648493, p = 2^255 - 19. "
            "(1) non-canonical S: TEST 1's S + L, written as 32 little-endian bytes; it satisfies "
            "the group equation but not S < L, and ZIP 215 rejects it too. (2) and (3) "
            "non-canonical R: R is the identity point, encoded as y = p + 1 or as y = 1 with the "
            "x sign bit set; k = SHA-512(R bytes as sent || A || M) mod L and S = k * a mod L "
            "with a the clamped secret scalar of TEST 1, so [S]B = R + [k]A holds once R is "
            "decoded leniently. (4) non-canonical A: the public key is the identity encoded as "
            "y = p + 1; R = [r]B and S = r for a fixed r satisfy [S]B = R + [k]A for any message."
        ),
        "vectors": vectors,
        "strict_rejects": build_rejects(RFC8032_VECTORS[0]),
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
