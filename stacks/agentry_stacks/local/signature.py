"""SigV4 verification for ``agentry local serve``: who signed a request, or why it is refused.

API Gateway's IAM authorizer verifies each request's Signature Version 4 and hands the
signer's principal to the function. The local server does the same with a table of keys
(access key id -> secret and principal ARN): it recomputes the signature with botocore's own
signer (``SigV4Auth``) over the method, path, query, signed headers and body it received,
with the scope fixed to ``execute-api`` and the stack's region, and compares the two in
constant time. A key is a caller: two keys, two callers.

Refused: no or a garbled ``Authorization`` header, another algorithm, service or region, an
unknown key, a session token (these keys are long-term), an ``X-Amz-Date`` more than five
minutes from now or of another day than the scope, unsigned ``host``/``x-amz-date``, a body
whose ``X-Amz-Content-SHA256`` is not its hash, query-string (presigned) signatures, and any
signature that does not match. See https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentry_runtime.identity import principal_of
from agentry_stacks.client.target import SERVICE

__all__ = [
    "MAX_CLOCK_SKEW",
    "KeySpecError",
    "KeyTable",
    "ReceivedRequest",
    "SignatureRefusedError",
    "SignatureVerifier",
    "SigningKey",
]

#: How far ``X-Amz-Date`` may be from the server's clock, either way (AWS allows 5 minutes).
MAX_CLOCK_SKEW = timedelta(minutes=5)

_ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_ACCESS_KEY_ID = re.compile(r"^[A-Za-z0-9_]{16,128}$")  # IAM: 16 to 128 word characters
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")
# AWS's own alphabet for key ids (base32: A-Z and 2-7), after the long-term-key prefix.
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class KeySpecError(ValueError):
    """A key given to the server is malformed (the message names which and why)."""


class SignatureRefusedError(Exception):
    """The request is not signed by a known key as this API requires; the message says why
    (it is returned to the caller as API Gateway's ``{"message": ...}`` with 403)."""


@dataclass(frozen=True)
class SigningKey:
    """An access key the server accepts: its secret and the principal it signs as."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal: str


class _KeyEntry(BaseModel):
    """One key of a keys file, under the names AWS uses for them."""

    model_config = ConfigDict(extra="forbid")
    accessKeyId: str = Field(min_length=16, max_length=128)  # noqa: N815 - the AWS names
    secretAccessKey: str = Field(min_length=1)  # noqa: N815
    principal: str


class _KeyFile(BaseModel):
    """``--keys-file``: ``{"keys": [{"accessKeyId", "secretAccessKey", "principal"}]}``."""

    model_config = ConfigDict(extra="forbid")
    keys: list[_KeyEntry] = Field(min_length=1)


class KeyTable:
    """The keys a server accepts, by access key id."""

    def __init__(self, keys: Iterable[SigningKey] = ()) -> None:
        self._keys: dict[str, SigningKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: SigningKey) -> SigningKey:
        """Accept ``key``; ``KeySpecError`` for a malformed one or an id already taken."""
        if not _ACCESS_KEY_ID.match(key.access_key_id):
            raise KeySpecError(
                f"{key.access_key_id!r}: an access key id is 16 to 128 letters, digits or _"
            )
        if not key.secret_access_key:
            raise KeySpecError(f"{key.access_key_id}: the secret is empty")
        try:
            principal_of(key.principal)
        except ValueError as exc:
            raise KeySpecError(f"{key.access_key_id}: {exc}") from exc
        if key.access_key_id in self._keys:
            raise KeySpecError(f"{key.access_key_id}: given twice")
        self._keys[key.access_key_id] = key
        return key

    def get(self, access_key_id: str) -> SigningKey | None:
        """The key with this id, if accepted."""
        return self._keys.get(access_key_id)

    def __iter__(self) -> Iterator[SigningKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def add_spec(self, spec: str) -> SigningKey:
        """Accept a key written ``ACCESS_KEY_ID=SECRET:PRINCIPAL_ARN`` (``--key``)."""
        key_id, equals, rest = spec.partition("=")
        # The secret ends where the principal's ARN starts: ARNs begin with "arn:".
        secret, colon, arn = rest.partition(":arn:")
        if not equals or not colon:
            raise KeySpecError(
                f"{spec.split('=', 1)[0]!r}: write a key as ACCESS_KEY_ID=SECRET:PRINCIPAL_ARN"
            )
        return self.add(SigningKey(key_id.strip(), secret, f"arn:{arn}".strip()))

    def add_file(self, path: Path) -> list[SigningKey]:
        """Accept every key of a JSON keys file (see ``_KeyFile``)."""
        try:
            document = _KeyFile.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise KeySpecError(f"{path}: {exc.strerror or exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(document)"
            raise KeySpecError(f"{path}: {where}: {first['msg']}") from exc
        return [
            self.add(SigningKey(k.accessKeyId, k.secretAccessKey, k.principal))
            for k in document.keys
        ]

    def add_generated(self, principal: str) -> SigningKey:
        """Accept a fresh random key for ``principal`` (the developer key of a server)."""
        key_id = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        return self.add(SigningKey(key_id, secrets.token_urlsafe(30), principal))


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the server received it: ``target`` is the raw request target (path and
    query, still percent-encoded), ``headers`` every header line in order."""

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    body: bytes = b""

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: str
    signature: str


class SignatureVerifier:
    """Verifies SigV4 for ``service`` in ``region`` against ``keys``; see the module doc.

    ``clock`` gives the current time (UTC), so a test can move it.
    """

    def __init__(
        self,
        keys: KeyTable,
        region: str,
        *,
        service: str = SERVICE,
        max_skew: timedelta = MAX_CLOCK_SKEW,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.keys = keys
        self.region = region
        self.service = service
        self.max_skew = max_skew
        self._clock = clock

    def verify(self, request: ReceivedRequest) -> SigningKey:
        """The key that signed ``request``; ``SignatureRefusedError`` saying why if none."""
        query = urlsplit(request.target).query
        if any(name.lower().startswith("x-amz-") for name, _ in parse_qsl(query)):
            raise SignatureRefusedError(
                "query-string (presigned) signatures are not supported here: sign the headers"
            )
        auth = self._authorization(request)
        key = self.keys.get(auth.access_key_id)
        if key is None:
            raise SignatureRefusedError(
                f"The security token included in the request is invalid: access key "
                f"{auth.access_key_id} is not one of this server's keys"
            )
        if request.values("x-amz-security-token"):
            raise SignatureRefusedError(
                "The security token included in the request is invalid: this server's keys "
                "are long-term keys and take no session token (unset AWS_SESSION_TOKEN)"
            )
        timestamp = self._timestamp(request, auth)
        self._check_payload_hash(request)
        expected = self._signature(request, auth, key, timestamp)
        if not hmac.compare_digest(expected, auth.signature):
            raise SignatureRefusedError(
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method."
            )
        return key

    def _authorization(self, request: ReceivedRequest) -> _Authorization:
        values = request.values("authorization")
        if not values:
            raise SignatureRefusedError(
                "Missing Authentication Token: sign the request with SigV4 (the routes use "
                "IAM authorization)"
            )
        if len(values) > 1:
            raise SignatureRefusedError("Authorization header is given more than once")
        algorithm, _, rest = values[0].strip().partition(" ")
        if algorithm != _ALGORITHM:
            raise SignatureRefusedError(f"Authorization header requires the {_ALGORITHM} algorithm")
        parts: dict[str, str] = {}
        for component in rest.split(","):
            name, equals, value = component.strip().partition("=")
            if not equals or name in parts:
                raise SignatureRefusedError(f"Authorization header is malformed: {component!r}")
            parts[name] = value
        if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
            raise SignatureRefusedError(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'"
            )
        scope = parts["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request" or not re.fullmatch(r"\d{8}", scope[1]):
            raise SignatureRefusedError(
                "Credential is malformed: expected "
                "ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"
            )
        key_id, date, region, service, _ = scope
        if service != self.service:
            raise SignatureRefusedError(
                f"Credential should be scoped to correct service: '{self.service}', not '{service}'"
            )
        if region != self.region:
            raise SignatureRefusedError(
                f"Credential should be scoped to a valid region, not '{region}': this API is "
                f"in '{self.region}'"
            )
        if not _SIGNATURE.match(parts["Signature"]):
            raise SignatureRefusedError("Signature is malformed: 64 lower-case hex digits")
        signed = parts["SignedHeaders"]
        names = signed.split(";")
        if not all(_HEADER_NAME.match(n) for n in names):
            raise SignatureRefusedError(f"SignedHeaders is malformed: {signed!r}")
        for required in ("host", "x-amz-date"):
            if required not in names:
                raise SignatureRefusedError(f"SignedHeaders must include '{required}'")
        return _Authorization(key_id, date, region, service, signed, parts["Signature"])

    def _timestamp(self, request: ReceivedRequest, auth: _Authorization) -> str:
        values = request.values("x-amz-date")
        if len(values) != 1:
            raise SignatureRefusedError("X-Amz-Date must be given once (YYYYMMDDTHHMMSSZ)")
        raw = values[0].strip()
        try:
            when = datetime.strptime(raw, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise SignatureRefusedError(f"X-Amz-Date {raw!r} is not YYYYMMDDTHHMMSSZ") from None
        if raw[:8] != auth.date:
            raise SignatureRefusedError(
                f"Credential date {auth.date} is not the date of X-Amz-Date {raw}"
            )
        now = self._clock()
        minutes = int(self.max_skew.total_seconds() // 60)
        if when < now - self.max_skew:
            raise SignatureRefusedError(
                f"Signature expired: {raw} is now earlier than "
                f"{(now - self.max_skew).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} - "
                f"{minutes} min.)"
            )
        if when > now + self.max_skew:
            raise SignatureRefusedError(
                f"Signature not yet current: {raw} is still later than "
                f"{(now + self.max_skew).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} + "
                f"{minutes} min.)"
            )
        return raw

    @staticmethod
    def _check_payload_hash(request: ReceivedRequest) -> None:
        # botocore's signer takes X-Amz-Content-SHA256 at its word instead of hashing the
        # body: a claimed hash must be the body's, or a signed request's body could be swapped.
        claimed = request.values("x-amz-content-sha256")
        if not claimed:
            return
        actual = hashlib.sha256(request.body).hexdigest()
        if len(claimed) != 1 or not hmac.compare_digest(claimed[0].strip(), actual):
            raise SignatureRefusedError(
                "X-Amz-Content-SHA256 is not the SHA-256 of the body (unsigned payloads are "
                "not accepted)"
            )

    def _signature(
        self, request: ReceivedRequest, auth: _Authorization, key: SigningKey, timestamp: str
    ) -> str:
        names = auth.signed_headers.split(";")
        host = request.values("host")
        if len(host) != 1:
            raise SignatureRefusedError("Host must be given once")
        # Only the headers the client signed enter the canonical request: proxies and HTTP
        # stacks add others (Content-Length, Connection) after signing.
        rebuilt = AWSRequest(
            method=request.method, url=f"http://{host[0]}{request.target}", data=request.body
        )
        for name in names:
            values = request.values(name)
            if not values:
                raise SignatureRefusedError(f"SignedHeaders names '{name}', which is not sent")
            for value in values:
                rebuilt.headers[name] = value
        rebuilt.context["timestamp"] = timestamp
        signer = SigV4Auth(
            Credentials(key.access_key_id, key.secret_access_key), self.service, self.region
        )
        # botocore never signs a few headers (User-Agent, Expect, X-Amzn-Trace-Id): a client
        # that did would be verified over a different list, so say so instead of "mismatch".
        recomputed = signer.signed_headers(signer.headers_to_sign(rebuilt))
        if recomputed != auth.signed_headers:
            raise SignatureRefusedError(
                f"SignedHeaders {auth.signed_headers!r} is not sorted, or names headers that "
                f"are never signed (expected {recomputed!r})"
            )
        canonical = signer.canonical_request(rebuilt)
        return str(signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt))
