"""The other side of coar-ldn's HTTP Message Signatures tests: pyauth's
http-message-signatures (an independent RFC 9421 implementation) signs requests that
coar-ldn must verify, and verifies requests that coar-ldn signed.

    python interop_signatures.py sign ALG URL BODY_FILE      -> JSON: request, keys
    python interop_signatures.py verify REQUEST_JSON_FILE    -> exit 0 when it verifies

ALG is ed25519 or rsa-pss-sha512. The JSON is
{"method", "url", "headers": [[name, value], ...], "body": base64, "jwk": {...},
 "private_pkcs8_pem": "..."}.
"""

import base64
import datetime
import json
import sys

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)

COVERED = ("@method", "@target-uri", "content-digest", "content-type")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class Keys(HTTPSignatureKeyResolver):
    def __init__(self, private=None, public=None):
        self.private, self.public = private, public

    def resolve_private_key(self, key_id):
        return self.private

    def resolve_public_key(self, key_id):
        return self.public


def algorithm(name):
    return {"ed25519": algorithms.ED25519, "rsa-pss-sha512": algorithms.RSA_PSS_SHA512}[name]


def sign(alg, url, body_file):
    body = open(body_file, "rb").read()
    if alg == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw), "kid": "python-ed25519"}
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = private.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": b64u(int_bytes(numbers.n)), "e": b64u(int_bytes(numbers.e)),
               "kid": "python-rsa"}
    request = requests.Request(
        "POST", url, data=body, headers={"Content-Type": "application/ld+json"}
    ).prepare()
    signer = HTTPMessageSigner(signature_algorithm=algorithm(alg), key_resolver=Keys(private=private))
    signer.sign(
        request,
        key_id=jwk["kid"],
        created=datetime.datetime.now(datetime.timezone.utc),
        expires=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5),
        covered_component_ids=COVERED,
        label="sig1",
        body=body,
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    json.dump(
        {
            "method": request.method,
            "url": request.url,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": base64.b64encode(body).decode(),
            "jwk": jwk,
            "private_pkcs8_pem": pem,
        },
        sys.stdout,
    )


def verify(request_file):
    given = json.load(open(request_file))
    jwk = given["jwk"]
    if jwk["kty"] == "OKP":
        public = ed25519.Ed25519PublicKey.from_public_bytes(unb64u(jwk["x"]))
        alg = "ed25519"
    else:
        public = rsa.RSAPublicNumbers(
            int.from_bytes(unb64u(jwk["e"]), "big"), int.from_bytes(unb64u(jwk["n"]), "big")
        ).public_key()
        alg = "rsa-pss-sha512"
    body = base64.b64decode(given["body"])
    request = requests.Request(
        given["method"], given["url"], data=body, headers=dict(given["headers"])
    ).prepare()
    verifier = HTTPMessageVerifier(signature_algorithm=algorithm(alg), key_resolver=Keys(public=public))
    results = verifier.verify(
        request, max_age=datetime.timedelta(minutes=10), require_components=COVERED, body=body
    )
    assert results and results[0].parameters["keyid"] == jwk["kid"], results
    print(f"verified {results[0].label} by {results[0].parameters['keyid']}")


if __name__ == "__main__":
    if sys.argv[1] == "sign":
        sign(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        verify(sys.argv[2])
