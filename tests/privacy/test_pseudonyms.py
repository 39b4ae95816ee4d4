"""Pseudonyms are HMAC-SHA256 of the identifier: the C HMAC and the hashlib one agree with hmac."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy import pseudonyms
from gateway.privacy.speedups import speedups_load

COMPILED = speedups_load() is not None
KEYS = [b"k", b"bench-partner-key-0123456789abcdef", b"x" * 63, b"x" * 64, b"x" * 65, b"y" * 300]
# Around SHA-256's block and padding boundaries (55/56 bytes, 64, 119/120), and multi-byte UTF-8.
VALUES = ["a", "user-190400", "x" * 55, "x" * 56, "x" * 63, "x" * 64, "x" * 119, "x" * 120]
VALUES += ["é" * 28, "日本語" * 40, "x" * 5000, "\U0001f600 id"]


def expected(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@pytest.fixture(params=["compiled", "compiled, portable SHA-256", "python"])
def keyed_for(request, monkeypatch):
    """_Keyed for a key: the C HMAC (with the CPU's SHA extensions where it has them, and
    with the portable compression), or hashlib alone."""
    if request.param.startswith("compiled") and not COMPILED:
        pytest.skip("gateway.privacy._speedups is not built")
    if request.param == "python":
        monkeypatch.setattr(pseudonyms, "_speedups", None)
        yield pseudonyms._Keyed
        return
    speedups_load().sha256_accelerate(request.param == "compiled")
    try:
        yield pseudonyms._Keyed
    finally:
        speedups_load().sha256_accelerate(True)  # as at import


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", VALUES)
def test_a_pseudonym_is_the_hmac_sha256_of_the_utf8_value(keyed_for, key, value):
    assert keyed_for(key).pseudonym(value) == expected(key, value)


@given(key=st.binary(min_size=1, max_size=200), value=st.text(min_size=1, max_size=300))
def test_any_key_and_value_give_the_hmac(key, value):
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates: see the test below
    keyed = pseudonyms._Keyed(key)
    assert keyed.pseudonym(value) == expected(key, value)


def test_a_value_that_cannot_be_utf8_has_no_pseudonym(keyed_for):
    assert keyed_for(b"key").pseudonym("user-\ud800") == ""
    assert pseudonyms.pseudonymise("user-\ud800", key=b"key") is None


@pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built")
def test_the_compiled_hmac_takes_only_a_str():
    compiled = speedups_load().KeyedHash(b"key")
    for wrong in (b"bytes", 1, None):
        with pytest.raises(TypeError):
            compiled(wrong)
    with pytest.raises(TypeError):
        compiled()


@pytest.mark.parametrize("compiled", [True, False])
@given(value=st.one_of(st.text(max_size=80), st.none(), st.integers(), st.binary(max_size=8)))
def test_the_uncached_pseudonymiser_answers_as_pseudonymise(compiled, value):
    # Compiled, it is the lenient C HMAC: None wherever pseudonymise has no pseudonym.
    if compiled and not COMPILED:
        pytest.skip("gateway.privacy._speedups is not built")
    keyed = pseudonyms._Keyed(b"partner-key")
    if not compiled:
        keyed.pseudonymiser = None
    pseudonyms._keyed[b"partner-key"] = keyed
    try:
        pseudonym = pseudonyms.uncached_pseudonymiser(b"partner-key")
        assert pseudonym(value) == pseudonyms.pseudonymise(value, key=b"partner-key")
    finally:
        del pseudonyms._keyed[b"partner-key"]


@pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built")
def test_the_lenient_compiled_hmac_has_no_pseudonym_where_the_python_one_has_none():
    lenient = speedups_load().KeyedHash(b"key", lenient=True)
    assert lenient("user-1") == expected(b"key", "user-1")
    for none in ("", "user-\ud800", b"bytes", 1, None):
        assert lenient(none) is None
    with pytest.raises(TypeError):
        speedups_load().KeyedHash(b"key", True)  # lenient is keyword-only
