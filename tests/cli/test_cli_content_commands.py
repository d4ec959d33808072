"""flux content load/store/flush/dropcache on a real instance (flux-content(1))."""
from __future__ import annotations

import os
import subprocess

import pytest

from broker.testing import TestInstance, flux_command


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    assert inst.stop() == 0


def content(inst, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(flux_command() + ["content", *args], env=inst.env, input=data,
                          capture_output=True, timeout=30)


def test_store_then_load_binary(inst):
    blob = os.urandom(5000) + b"\0tail"
    st = content(inst, "store", data=blob)
    assert st.returncode == 0, st.stderr
    ref = st.stdout.decode().strip()
    assert ref.startswith("blake3-") and len(ref) == len("blake3-") + 64
    ld = content(inst, "load", ref)
    assert ld.returncode == 0 and ld.stdout == blob
    assert content(inst, "load", "-b", ref).stdout == blob
    assert content(inst, "store", "-b", data=blob).stdout.decode().strip() == ref


def test_store_known_vector(inst):
    out = content(inst, "store", data=b"hello").stdout.decode().strip()
    assert out == "blake3-ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"


def test_empty_blob(inst):
    ref = content(inst, "store", data=b"").stdout.decode().strip()
    assert ref == "blake3-af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    out = content(inst, "load", ref)
    assert out.returncode == 0 and out.stdout == b""


def test_load_missing_blob(inst):
    ref = "blake3-" + "0" * 64
    out = content(inst, "load", ref)
    assert out.returncode == 1
    assert out.stderr.decode() == f"flux-content: {ref}: No such file or directory\n"


def test_load_bad_blobref_names_it(inst):
    out = content(inst, "load", "sha1-f1d2d2f924e986ac86fdf7b36c94bcdf32beec15")
    assert out.returncode == 1
    err = out.stderr.decode()
    assert err.startswith("flux-content: ") and "sha1" in err


def test_store_too_big(inst):
    out = content(inst, "store", data=b"x" * ((1 << 20) + 1))
    assert out.returncode == 1 and "exceeds the limit" in out.stderr.decode()


def test_flush_and_dropcache(inst):
    assert content(inst, "flush").returncode == 0
    assert content(inst, "dropcache").returncode == 0


def test_usage_errors(inst):
    assert content(inst, "load").returncode == 2
    assert content(inst, "frob").returncode == 2
    assert content(inst, "load", "-x", "r").returncode == 2


def test_kvs_values_are_loadable_blobs(inst):
    big = "v" * 5000   # past val_inline_max: stored as a valref
    assert inst.flux("kvs", "put", f"cb.big={big}").returncode == 0
    tobj = inst.flux("kvs", "get", "-t", "cb.big").stdout
    import orjson
    ref = orjson.loads(tobj)["data"][0]
    assert content(inst, "load", ref).stdout == big.encode()
