"""The local server's SigV4 verifier and key table, without a server: requests signed by
botocore, then received as the server would receive them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from agentry_stacks.local.signature import (
    KeySpecError,
    KeyTable,
    ReceivedRequest,
    SignatureRefusedError,
    SignatureVerifier,
    SigningKey,
)

ALICE = "arn:aws:sts::123456789012:assumed-role/team-a/alice"
KEY = SigningKey("AKIAALICE00000000001", "s3cret", ALICE)
HOST = "127.0.0.1:8765"


def _received(
    *,
    body: bytes = b'{"goal": "go"}',
    target: str = "/agents?limit=5",
    token: str | None = None,
    extra: dict[str, str] | None = None,
) -> ReceivedRequest:
    """A request botocore signed for execute-api in us-east-1, as the server receives it
    (plus the headers an HTTP stack adds after signing)."""
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}{target}",
        data=body,
        headers={"Host": HOST, "Content-Type": "application/json", **(extra or {})},
    )
    credentials = Credentials(KEY.access_key_id, KEY.secret_access_key, token)
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    headers = [
        *request.headers.items(),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    return ReceivedRequest("POST", target, headers, body)


def _verifier(shift: timedelta = timedelta()) -> SignatureVerifier:
    return SignatureVerifier(KeyTable([KEY]), "us-east-1", clock=lambda: datetime.now(UTC) + shift)


def test_a_request_signed_by_a_known_key_names_its_principal() -> None:
    assert _verifier().verify(_received()).principal == ALICE
    # Headers signed beyond the minimum (Idempotency-Key) are verified too
    assert _verifier().verify(_received(extra={"Idempotency-Key": "k"})) == KEY


def _refused(request: ReceivedRequest, shift: timedelta = timedelta()) -> str:
    with pytest.raises(SignatureRefusedError) as refused:
        _verifier(shift).verify(request)
    return str(refused.value)


def _with(request: ReceivedRequest, name: str, value: str | None) -> ReceivedRequest:
    headers = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return ReceivedRequest(request.method, request.target, headers, request.body)


def test_what_is_signed_cannot_change() -> None:
    signed = _received(extra={"Idempotency-Key": "k"})
    changed = [
        ReceivedRequest("PUT", signed.target, signed.headers, signed.body),
        ReceivedRequest("POST", "/agents?limit=6", signed.headers, signed.body),
        ReceivedRequest("POST", "/agents/x?limit=5", signed.headers, signed.body),
        ReceivedRequest("POST", signed.target, signed.headers, b'{"goal": "GO"}'),
        _with(signed, "Idempotency-Key", "other"),
        _with(signed, "Host", "localhost:8765"),
    ]
    for request in changed:
        assert "does not match" in _refused(request)


def test_dates_more_than_five_minutes_away_are_refused() -> None:
    assert "Signature expired" in _refused(_received(), timedelta(minutes=5, seconds=30))
    assert "not yet current" in _refused(_received(), timedelta(minutes=-6))
    assert _verifier(timedelta(minutes=4)).verify(_received()) == KEY
    # The scope's date must be the request's
    signed = _received()
    amz_date = next(v for k, v in signed.headers if k.lower() == "x-amz-date")
    other_day = (datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ") - timedelta(days=1)).strftime(
        "%Y%m%d"
    )
    authorization = next(v for k, v in signed.headers if k.lower() == "authorization")
    moved = authorization.replace(f"/{amz_date[:8]}/", f"/{other_day}/")
    assert "is not the date of X-Amz-Date" in _refused(_with(signed, "Authorization", moved))
    assert "X-Amz-Date must be given once" in _refused(_with(signed, "X-Amz-Date", None))


def test_headers_that_must_be_signed_and_hashes_that_must_be_true() -> None:
    signed = _received()
    authorization = next(v for k, v in signed.headers if k.lower() == "authorization")
    without_host = authorization.replace(
        "SignedHeaders=content-type;host;", "SignedHeaders=content-type;"
    )
    assert "must include 'host'" in _refused(_with(signed, "Authorization", without_host))
    unsorted = authorization.replace("content-type;host", "host;content-type")
    assert "not sorted" in _refused(_with(signed, "Authorization", unsorted))
    assert "which is not sent" in _refused(_with(signed, "Content-Type", None))
    unsigned = _with(signed, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")
    assert "not the SHA-256 of the body" in _refused(unsigned)


def test_session_tokens_and_presigned_urls_are_not_accepted() -> None:
    assert "take no session token" in _refused(_received(token="FwoGZX..."))
    presigned = _received(target="/agents?X-Amz-Signature=abc")
    assert "presigned" in _refused(presigned)


def test_the_key_table_reads_flags_and_files(tmp_path: Path) -> None:
    keys = KeyTable()
    # A secret may hold any character but the ARN's start
    key = keys.add_spec(f"AKIABOB0000000000002=a:b=c/d+e:{ALICE}")
    assert (key.secret_access_key, key.principal) == ("a:b=c/d+e", ALICE)
    assert "s3cret" not in repr(KEY)  # secrets never show in logs or tracebacks
    developer = keys.add_generated("arn:aws:iam::123456789012:user/dev")
    assert developer.access_key_id.startswith("AKIA")
    assert len(developer.access_key_id) == 20
    assert developer.secret_access_key != keys.add_generated(ALICE).secret_access_key
    path = tmp_path / "keys.json"
    entry = {"accessKeyId": "AKIAFILE000000000003", "secretAccessKey": "x", "principal": ALICE}
    path.write_text(json.dumps({"keys": [entry]}))
    (loaded,) = keys.add_file(path)
    assert keys.get("AKIAFILE000000000003") == loaded
    assert len(keys) == 4


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("AKIABOB0000000000002", "ACCESS_KEY_ID=SECRET:PRINCIPAL_ARN"),
        ("AKIABOB0000000000002=secret", "ACCESS_KEY_ID=SECRET:PRINCIPAL_ARN"),
        ("short=s:arn:aws:iam::123456789012:user/x", "16 to 128"),
        ("AKIABOB0000000000002=:arn:aws:iam::123456789012:user/x", "the secret is empty"),
        ("AKIABOB0000000000002=s:arn:aws:s3:::bucket", "not an IAM principal ARN"),
        (f"{KEY.access_key_id}=other:{ALICE}", "given twice"),
    ],
)
def test_malformed_keys_are_refused(spec: str, message: str) -> None:
    with pytest.raises(KeySpecError, match=message):
        KeyTable([KEY]).add_spec(spec)


def test_a_malformed_keys_file_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"accessKeyId": "AKIAFILE000000000003"}]}))
    with pytest.raises(KeySpecError, match=r"keys\.0\.secretAccessKey"):
        KeyTable().add_file(path)
    with pytest.raises(KeySpecError, match="No such file"):
        KeyTable().add_file(tmp_path / "missing.json")
