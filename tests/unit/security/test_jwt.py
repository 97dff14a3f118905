"""JwtService (RFC 8725): round trips for every kind, and every forged, mistyped, expired or
malformed token from the R10 matrix rejected; key loading and decoding."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from voxdialog.security.jwt import (
    ACCESS,
    REFRESH,
    WS_TICKET,
    JwtService,
    TokenClaims,
    TokenError,
    key_from_setting,
    load_or_create_key,
)

KEY = bytes(range(48))
OTHER_KEY = bytes(range(100, 148))
NOW = 1_750_000_000
KINDS = [ACCESS, REFRESH, WS_TICKET]
HEADER_TYPES = {ACCESS: "at+jwt", REFRESH: "rt+jwt", WS_TICKET: "wst+jwt"}
_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_RSA_PUBLIC_PEM = _RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _service() -> JwtService:
    return JwtService(KEY)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _forge(
    header: dict[str, Any], payload: dict[str, Any], key: bytes = KEY, digest: str = "sha256"
) -> str:
    """An HMAC-signed token built by hand, so any header, key or hash can be used."""
    signing_input = f"{_json_b64(header)}.{_json_b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(**changes: Any) -> dict[str, Any]:
    """A valid access-token payload at NOW; a change to None drops that claim."""
    payload: dict[str, Any] = {
        "iss": "voxdialog",
        "aud": "voxdialog",
        "sub": "user-1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 900,
        "jti": "jti-1",
        "tid": "tenant-1",
        "role": "member",
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def _header(**changes: Any) -> dict[str, Any]:
    return {"alg": "HS256", "typ": "at+jwt", **changes}


def _issued(kind: str) -> str:
    token, _ = _service().issue(
        kind, user_id="user-1", tenant_id="tenant-1", role="member", now=NOW
    )
    return token


def _tampered_payload() -> str:
    header, _, signature = _issued(ACCESS).split(".")
    return f"{header}.{_json_b64(_claims(role='owner'))}.{signature}"


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_round_trips(kind: str) -> None:
    service = _service()

    token, issued = service.issue(
        kind, user_id="u-7", tenant_id="t-3", role="admin", sid="s-1", agent="a-9", now=NOW
    )

    assert service.verify(token, kind, now=NOW) == issued
    assert issued == TokenClaims(
        sub="u-7",
        tenant_id="t-3",
        role="admin",
        typ=kind,
        jti=issued.jti,
        sid="s-1",
        exp=issued.exp,
        iat=NOW,
        agent="a-9",
    )


@pytest.mark.parametrize(("kind", "ttl_s"), [(ACCESS, 900), (REFRESH, 14 * 86400), (WS_TICKET, 60)])
def test_tokens_expire_after_their_kinds_lifetime(kind: str, ttl_s: int) -> None:
    _, claims = _service().issue(kind, user_id="u", tenant_id="t", role="r", now=NOW)

    assert claims.exp - claims.iat == ttl_s


@pytest.mark.parametrize("kind", KINDS)
def test_issued_tokens_carry_only_alg_and_the_kinds_typ_header(kind: str) -> None:
    assert jwt.get_unverified_header(_issued(kind)) == {"alg": "HS256", "typ": HEADER_TYPES[kind]}


def test_issued_payload_has_the_registered_claims_and_omits_unset_ones() -> None:
    payload = jwt.decode(_issued(ACCESS), options={"verify_signature": False})

    assert set(payload) == {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "tid", "role"}
    assert payload["nbf"] == payload["iat"] == NOW


def test_every_token_gets_a_fresh_jti() -> None:
    service = _service()

    jtis = {service.issue(ACCESS, user_id="u", tenant_id="t", role="r")[1].jti for _ in range(20)}

    assert len(jtis) == 20


def test_without_now_the_clock_is_used() -> None:
    service = _service()
    token, claims = service.issue(ACCESS, user_id="u", tenant_id="t", role="r")

    assert service.verify(token, ACCESS) == claims
    with pytest.raises(TokenError):
        service.verify(_issued(ACCESS), ACCESS)  # issued at NOW, long expired by now


def test_exp_just_inside_the_leeway_is_accepted() -> None:
    token = _forge(_header(), _claims(iat=NOW - 910, nbf=NOW - 910, exp=NOW - 10))

    assert _service().verify(token, ACCESS, now=NOW).exp == NOW - 10


def test_nbf_10_s_ahead_is_accepted() -> None:
    token = _forge(_header(), _claims(iat=NOW + 10, nbf=NOW + 10, exp=NOW + 910))

    assert _service().verify(token, ACCESS, now=NOW).sub == "user-1"


# --- the R10 negative matrix ------------------------------------------------------------------

_REJECTED: dict[str, Callable[[], str]] = {
    "alg none": lambda: f"{_json_b64(_header(alg='none'))}.{_json_b64(_claims())}.",
    "alg None": lambda: f"{_json_b64(_header(alg='None'))}.{_json_b64(_claims())}.",
    "no alg": lambda: _forge({"typ": "at+jwt"}, _claims()),
    "signed with another key": lambda: jwt.encode(
        _claims(), OTHER_KEY, algorithm="HS256", headers={"typ": "at+jwt"}
    ),
    "tampered payload": _tampered_payload,
    "signature dropped": lambda: _issued(ACCESS).rsplit(".", 1)[0] + ".",
    "HS384 with the right key": lambda: _forge(_header(alg="HS384"), _claims(), digest="sha384"),
    "HS512 with the right key": lambda: _forge(_header(alg="HS512"), _claims(), digest="sha512"),
    "RS256": lambda: jwt.encode(_claims(), _RSA_KEY, algorithm="RS256", headers={"typ": "at+jwt"}),
    "HS/RS confusion (HMAC keyed with the RSA public PEM)": lambda: _forge(
        _header(), _claims(), key=_RSA_PUBLIC_PEM
    ),
    "expired beyond the leeway": lambda: _forge(
        _header(), _claims(iat=NOW - 931, nbf=NOW - 931, exp=NOW - 31)
    ),
    "expired exactly at the leeway": lambda: _forge(
        _header(), _claims(iat=NOW - 930, nbf=NOW - 930, exp=NOW - 30)
    ),
    "nbf 60 s ahead": lambda: _forge(_header(), _claims(nbf=NOW + 60)),
    "iat 60 s ahead": lambda: _forge(_header(), _claims(iat=NOW + 60)),
    "exp not an integer": lambda: _forge(_header(), _claims(exp=str(NOW + 900))),
    "exp a boolean": lambda: _forge(_header(), _claims(exp=True)),
    "wrong iss": lambda: _forge(_header(), _claims(iss="someone-else")),
    "wrong aud": lambda: _forge(_header(), _claims(aud="someone-else")),
    "aud as a list": lambda: _forge(_header(), _claims(aud=["voxdialog", "other"])),
    "sub not a string": lambda: _forge(_header(), _claims(sub=42)),
    "empty tid": lambda: _forge(_header(), _claims(tid="")),
    "sid not a string": lambda: _forge(_header(), _claims(sid=7)),
    "typ JWT": lambda: _forge(_header(typ="JWT"), _claims()),
    "no typ": lambda: _forge({"alg": "HS256"}, _claims()),
    "garbage": lambda: "not a token",
    "three garbage parts": lambda: "a.b.c",
    "empty string": lambda: "",
    "overlong": lambda: _forge(_header(), _claims(pad="x" * 4096)),
}


def _without_claim(claim: str) -> Callable[[], str]:
    return lambda: _forge(_header(), _claims(**{claim: None}))


def _with_header(name: str, value: object) -> Callable[[], str]:
    return lambda: _forge(_header(**{name: value}), _claims())


for _claim in ("exp", "iat", "nbf", "sub", "jti", "tid", "role", "iss", "aud"):
    _REJECTED[f"missing {_claim}"] = _without_claim(_claim)
# We only ever write alg and typ: any other header parameter is refused, validly signed or not.
for _name, _value in {
    "kid": "key-1",
    "jku": "https://attacker.example/jwks.json",
    "jwk": {"kty": "oct", "k": _b64(OTHER_KEY)},
    "x5u": "https://attacker.example/cert.pem",
    "x5c": ["MIIB"],
    "crit": ["exp"],
    "cty": "JWT",
}.items():
    _REJECTED[f"{_name} header"] = _with_header(_name, _value)


@pytest.mark.parametrize("make_token", _REJECTED.values(), ids=_REJECTED.keys())
def test_forged_or_malformed_access_tokens_are_rejected(make_token: Callable[[], str]) -> None:
    token = make_token()

    with pytest.raises(TokenError) as caught:
        _service().verify(token, ACCESS, now=NOW)

    assert str(caught.value) == "invalid or expired token"
    # PyJWT's own error (which may quote claim values) is not chained into our traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_the_matrix_cases_differ_from_a_valid_token_only_where_named() -> None:
    # The forging helpers make tokens that pass when nothing is changed, so each rejection
    # above is down to the named defect.
    assert _service().verify(_forge(_header(), _claims()), ACCESS, now=NOW).sub == "user-1"


@pytest.mark.parametrize(
    ("issued_as", "presented_as"),
    [(issued, presented) for issued in KINDS for presented in KINDS if issued != presented],
)
def test_a_token_of_one_kind_never_passes_as_another(issued_as: str, presented_as: str) -> None:
    with pytest.raises(TokenError):
        _service().verify(_issued(issued_as), presented_as, now=NOW)


@pytest.mark.parametrize("token", [None, b"a.b.c", 42])
def test_non_string_input_is_rejected(token: Any) -> None:
    with pytest.raises(TokenError):
        _service().verify(token, ACCESS, now=NOW)


def test_an_unknown_kind_is_a_programming_error() -> None:
    service = _service()

    with pytest.raises(ValueError, match="unknown token kind"):
        service.issue("id", user_id="u", tenant_id="t", role="r")
    with pytest.raises(ValueError, match="unknown token kind"):
        service.verify(_issued(ACCESS), "id", now=NOW)


# --- construction ---------------------------------------------------------------------------


def test_a_key_under_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JwtService(bytes(31))

    JwtService(bytes(32))


@pytest.mark.parametrize(
    "settings",
    [{"access_ttl_s": 901}, {"ticket_ttl_s": 61}, {"access_ttl_s": 0}, {"refresh_ttl_s": 0}],
)
def test_lifetimes_out_of_range_are_refused(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        JwtService(KEY, **settings)


# --- keys -----------------------------------------------------------------------------------


def test_a_missing_key_file_is_created_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "jwt.key"

    key = load_or_create_key(path)

    assert len(key) == 48
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert [entry.name for entry in path.parent.iterdir()] == ["jwt.key"]


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    start = threading.Barrier(8)
    keys: list[bytes] = []

    def worker() -> None:
        start.wait(timeout=10)
        keys.append(load_or_create_key(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(keys) == 8
    assert set(keys) == {path.read_bytes()}


def test_a_short_existing_key_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    path.write_bytes(b"x" * 31)

    with pytest.raises(ValueError, match="at least 32 bytes"):
        load_or_create_key(path)

    assert path.read_bytes() == b"x" * 31


_SECRET = bytes([0xFB, 0xFF, 0x10]) * 11  # 33 bytes; its base64 uses + and /


@pytest.mark.parametrize(
    "setting",
    [
        _SECRET.hex(),
        _SECRET.hex().upper(),
        base64.b64encode(_SECRET).decode(),
        base64.urlsafe_b64encode(_SECRET).decode(),
        base64.urlsafe_b64encode(_SECRET).decode().rstrip("="),
        f"  {_SECRET.hex()}\n",
    ],
)
def test_configured_secrets_decode_from_hex_and_base64(setting: str) -> None:
    assert key_from_setting(setting) == _SECRET


def test_a_configured_secret_that_is_not_encoded_is_used_as_text() -> None:
    secret = "correct horse battery staple, twice over!"

    assert key_from_setting(secret) == secret.encode()


@pytest.mark.parametrize(
    "setting",
    [
        bytes(31).hex(),
        base64.b64encode(bytes(31)).decode(),
        "short secret",
        "",
    ],
)
def test_configured_secrets_under_32_bytes_are_refused(setting: str) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        key_from_setting(setting)


def test_hex_is_tried_before_base64() -> None:
    # 64 hex digits are also valid base64 (48 bytes); the stricter reading wins.
    setting = bytes(range(32)).hex()
    assert binascii.a2b_base64(setting)

    assert key_from_setting(setting) == bytes(range(32))
