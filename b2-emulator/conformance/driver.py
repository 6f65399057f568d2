"""Drives the official b2sdk and b2 command-line tool against a running b2-emulator.

Usage: driver.py REALM_URL KEY_ID KEY B2_EXECUTABLE
Prints one line per check and a closing "N passed, N failed" line; exits non-zero on failure.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
import urllib.error
import urllib.request

from b2sdk.v2 import (
    B2Api,
    EncryptionAlgorithm,
    EncryptionKey,
    EncryptionMode,
    EncryptionSetting,
    FileRetentionSetting,
    InMemoryAccountInfo,
    LegalHold,
    RetentionMode,
)
from b2sdk.v2.exception import B2Error, Unauthorized

REALM, KEY_ID, KEY, B2_EXE = sys.argv[1:5]
RESULTS = []
PREFIX = "conf-" + hashlib.sha1(os.urandom(8)).hexdigest()[:8]


def check(name):
    def wrap(fn):
        try:
            fn()
            RESULTS.append((name, True))
            print(f"ok    {name}")
        except Exception:  # noqa: BLE001 - every failure is reported
            RESULTS.append((name, False))
            print(f"FAIL  {name}")
            traceback.print_exc(limit=4, file=sys.stdout)
        return fn

    return wrap


def expect_error(fn, *types):
    try:
        fn()
    except types or (B2Error,) as e:  # noqa: PERF203
        return e
    raise AssertionError(f"expected {types or 'a B2 error'}")


def new_api(key_id=KEY_ID, key=KEY):
    api = B2Api(InMemoryAccountInfo())
    api.authorize_account(REALM, key_id, key)
    return api


api = new_api()
state = {}
DATA_SMALL = os.urandom(100_000)
DATA_LARGE = os.urandom(1_200_000)  # > 2 x recommended part size: uploaded as a large file


@check("authorize: storageApi shape and account id")
def _():
    info = api.account_info
    assert info.get_account_id()
    assert info.get_api_url() == REALM
    assert info.get_download_url() == REALM
    assert info.get_recommended_part_size() > 0
    assert info.get_absolute_minimum_part_size() > 0
    assert "writeFiles" in info.get_allowed()["capabilities"]


@check("bucket create, list, update, revision conflict")
def _():
    b = api.create_bucket(PREFIX + "-main", "allPrivate", bucket_info={"k": "v"})
    state["bucket"] = b
    names = [x.name for x in api.list_buckets()]
    assert b.name in names, names
    assert api.get_bucket_by_name(b.name).id_ == b.id_
    rev = api.get_bucket_by_name(b.name).revision
    b2 = b.update(bucket_info={"k": "w"}, if_revision_is=rev)
    assert b2.revision == rev + 1
    assert b2.bucket_info == {"k": "w"}
    expect_error(lambda: b.update(bucket_info={"k": "x"}, if_revision_is=rev))
    other = api.create_bucket(PREFIX + "-other", "allPublic")
    state["other"] = other
    assert api.get_bucket_by_name(other.name).type_ == "allPublic"


@check("upload small file and read its info")
def _():
    b = state["bucket"]
    fv = b.upload_bytes(DATA_SMALL, "dir/small.bin", file_info={"color": "blue"})
    state["small"] = fv
    assert fv.size == len(DATA_SMALL)
    assert fv.content_sha1 == hashlib.sha1(DATA_SMALL).hexdigest()
    info = api.get_file_info(fv.id_)
    assert info.file_info == {"color": "blue"}, info.file_info


@check("upload large file with parallel parts")
def _():
    b = state["bucket"]
    fv = b.upload_bytes(DATA_LARGE, "dir/large.bin")
    state["large"] = fv
    assert fv.size == len(DATA_LARGE)
    info = api.get_file_info(fv.id_)
    # Stored as a large file: no whole-file SHA1, the client's large_file_sha1 in its info.
    assert info.content_sha1 in (None, "none"), info.content_sha1
    assert info.file_info.get("large_file_sha1") in (None, hashlib.sha1(DATA_LARGE).hexdigest())


@check("ls with versions and folders")
def _():
    b = state["bucket"]
    b.upload_bytes(b"v1", "dir/versioned.txt")
    b.upload_bytes(b"v2", "dir/versioned.txt")
    b.upload_bytes(b"z", "top.txt")
    versions = list(b.list_file_versions("dir/versioned.txt"))
    assert len(versions) == 2, versions
    assert versions[0].upload_timestamp >= versions[1].upload_timestamp
    latest = [fv.file_name for fv, _ in b.ls("dir", recursive=True)]
    assert latest == ["dir/large.bin", "dir/small.bin", "dir/versioned.txt"], latest
    top = [(fv.file_name, folder) for fv, folder in b.ls("", recursive=False)]
    assert ("top.txt", None) in top and any(f == "dir/" for _, f in top), top
    allv = [fv.file_name for fv, _ in b.ls("dir", recursive=True, latest_only=False)]
    assert allv.count("dir/versioned.txt") == 2, allv


@check("download whole and ranged, with SHA1 checks")
def _():
    b = state["bucket"]
    for name, data in (("dir/small.bin", DATA_SMALL), ("dir/large.bin", DATA_LARGE)):
        out = io.BytesIO()
        b.download_file_by_name(name).save(out)
        assert out.getvalue() == data, name
    out = io.BytesIO()
    api.download_file_by_id(state["large"].id_, range_=(1000, 250_999)).save(out)
    assert out.getvalue() == DATA_LARGE[1000:251_000]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.bin")
        b.download_file_by_name("dir/large.bin").save_to(path)
        with open(path, "rb") as f:
            assert f.read() == DATA_LARGE


@check("hide and unhide")
def _():
    b = state["bucket"]
    b.hide_file("top.txt")
    names = [fv.file_name for fv, _ in b.ls("", recursive=True)]
    assert "top.txt" not in names, names
    b.unhide_file("top.txt")
    names = [fv.file_name for fv, _ in b.ls("", recursive=True)]
    assert "top.txt" in names, names


@check("delete file versions")
def _():
    b = state["bucket"]
    versions = list(b.list_file_versions("dir/versioned.txt"))
    b.delete_file_version(versions[0].id_, versions[0].file_name)
    left = list(b.list_file_versions("dir/versioned.txt"))
    assert [v.id_ for v in left] == [versions[1].id_]
    out = io.BytesIO()
    b.download_file_by_name("dir/versioned.txt").save(out)
    assert out.getvalue() == b"v1"


@check("server-side copy, small and large by parts")
def _():
    b = state["bucket"]
    fv = b.copy(state["small"].id_, "copy/small.bin")
    out = io.BytesIO()
    b.download_file_by_id(fv.id_).save(out)
    assert out.getvalue() == DATA_SMALL
    size = len(DATA_LARGE)
    fv = b.copy(state["large"].id_, "copy/large.bin", length=size, min_part_size=200_000, max_part_size=400_000)
    assert api.get_file_info(fv.id_).content_sha1 in (None, "none"), "expected a copy by parts"
    out = io.BytesIO()
    b.download_file_by_id(fv.id_).save(out)
    assert out.getvalue() == DATA_LARGE
    fv = state["other"].copy(state["small"].id_, "ranged.bin", offset=10, length=1000)
    out = io.BytesIO()
    api.download_file_by_id(fv.id_).save(out)
    assert out.getvalue() == DATA_SMALL[10:1010]


@check("keys: create, list, restricted key refused outside its bucket, delete")
def _():
    b, other = state["bucket"], state["other"]
    k = api.create_key(["listBuckets", "listFiles", "readFiles", "writeFiles"], "restricted-" + PREFIX, bucket_id=b.id_)
    ids = [x.id_ for x in api.list_keys()]
    assert k.id_ in ids, ids
    rapi = new_api(k.id_, k.application_key)
    rb = rapi.get_bucket_by_name(b.name)
    rb.upload_bytes(b"from restricted key", "restricted.txt")
    assert "restricted.txt" in [fv.file_name for fv, _ in rb.ls("", recursive=True)]
    expect_error(lambda: rapi.get_bucket_by_name(other.name))
    expect_error(lambda: rapi.get_bucket_by_id(other.id_).upload_bytes(b"x", "nope.txt"))
    expect_error(lambda: list(rapi.get_bucket_by_id(other.id_).ls("", recursive=True)))
    api.delete_key(k)
    assert k.id_ not in [x.id_ for x in api.list_keys()]
    expect_error(lambda: new_api(k.id_, k.application_key))


@check("download authorization URL scoped by prefix")
def _():
    b = state["bucket"]
    token = b.get_download_authorization("dir/", 3600)
    url = b.get_download_url("dir/small.bin") + "?Authorization=" + token
    with urllib.request.urlopen(url) as r:
        assert r.read() == DATA_SMALL
    try:
        urllib.request.urlopen(b.get_download_url("top.txt") + "?Authorization=" + token)
        raise AssertionError("a download outside the prefix was allowed")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
        assert json.loads(e.read())["code"] == "unauthorized"
    try:
        urllib.request.urlopen(b.get_download_url("dir/small.bin"))
        raise AssertionError("a private download without a token was allowed")
    except urllib.error.HTTPError as e:
        assert e.code == 401


@check("server-side encryption: SSE-B2 and SSE-C")
def _():
    b = state["bucket"]
    sse_b2 = EncryptionSetting(EncryptionMode.SSE_B2, EncryptionAlgorithm.AES256)
    fv = b.upload_bytes(b"secret", "sse/b2.txt", encryption=sse_b2)
    assert fv.server_side_encryption.mode == EncryptionMode.SSE_B2
    key = EncryptionKey(secret=os.urandom(32), key_id="k1")
    sse_c = EncryptionSetting(EncryptionMode.SSE_C, EncryptionAlgorithm.AES256, key)
    fv = b.upload_bytes(b"customer secret", "sse/c.txt", encryption=sse_c)
    out = io.BytesIO()
    b.download_file_by_id(fv.id_, encryption=sse_c).save(out)
    assert out.getvalue() == b"customer secret"
    wrong = EncryptionSetting(EncryptionMode.SSE_C, EncryptionAlgorithm.AES256, EncryptionKey(secret=os.urandom(32), key_id="k2"))
    expect_error(lambda: b.download_file_by_id(fv.id_, encryption=wrong).save(io.BytesIO()))
    expect_error(lambda: b.download_file_by_id(fv.id_).save(io.BytesIO()))


@check("object lock: retention and legal hold")
def _():
    lb = api.create_bucket(PREFIX + "-lock", "allPrivate", is_file_lock_enabled=True)
    state["lock"] = lb
    import time

    until = int(time.time() * 1000) + 3_600_000
    fv = lb.upload_bytes(
        b"kept", "kept.txt", file_retention=FileRetentionSetting(RetentionMode.GOVERNANCE, until), legal_hold=LegalHold.ON
    )
    info = api.get_file_info(fv.id_)
    assert info.file_retention.mode == RetentionMode.GOVERNANCE
    assert info.legal_hold == LegalHold.ON
    expect_error(lambda: lb.delete_file_version(fv.id_, fv.file_name))
    api.update_file_legal_hold(fv.id_, fv.file_name, LegalHold.OFF)
    expect_error(lambda: lb.delete_file_version(fv.id_, fv.file_name))
    lb.delete_file_version(fv.id_, fv.file_name, bypass_governance=True)


@check("event notification rules stored and returned")
def _():
    b = state["bucket"]
    rules = [
        {
            "name": "created",
            "eventTypes": ["b2:ObjectCreated:*"],
            "isEnabled": True,
            "objectNamePrefix": "dir/",
            "targetConfiguration": {"targetType": "webhook", "url": "https://example.invalid/hook"},
        }
    ]
    got = b.set_notification_rules(rules)
    assert got[0]["name"] == "created"
    got = b.get_notification_rules()
    assert [r["name"] for r in got] == ["created"]


@check("b2 command-line tool: ls, upload, download, rm")
def _():
    env = dict(
        os.environ,
        B2_ENVIRONMENT=REALM,
        B2_APPLICATION_KEY_ID=KEY_ID,
        B2_APPLICATION_KEY=KEY,
    )
    with tempfile.TemporaryDirectory() as d:
        env["B2_ACCOUNT_INFO"] = os.path.join(d, "account.sqlite")
        src = os.path.join(d, "cli.bin")
        with open(src, "wb") as f:
            f.write(DATA_SMALL)

        def b2(*args):
            return subprocess.run([B2_EXE, *args], env=env, check=True, capture_output=True, text=True).stdout

        b2("account", "authorize")
        bucket = state["bucket"].name
        b2("file", "upload", "--no-progress", bucket, src, "cli/file.bin")
        listing = b2("ls", "-r", f"b2://{bucket}/cli/")
        assert "cli/file.bin" in listing, listing
        dst = os.path.join(d, "back.bin")
        b2("file", "download", "--no-progress", f"b2://{bucket}/cli/file.bin", dst)
        with open(dst, "rb") as f:
            assert f.read() == DATA_SMALL
        b2("rm", "--versions", "-r", f"b2://{bucket}/cli/")
        assert "cli/file.bin" not in b2("ls", "-r", f"b2://{bucket}/")


def control(path, body=None, method="POST"):
    req = urllib.request.Request(REALM + "/__emulator/" + path, data=json.dumps(body).encode() if body else None, method=method)
    with urllib.request.urlopen(req) as r:
        return json.load(r)


@check("retries: b2sdk recovers from injected 503s on uploads and 429s on calls")
def _():
    b = state["bucket"]
    control("faults", {"action": "status", "status": 503, "target": "uploads", "percent": 30})
    control("faults", {"action": "status", "status": 429, "retryAfter": 1, "target": "b2_list_file_names", "count": 1})
    try:
        fv = b.upload_bytes(DATA_LARGE, "retry/large.bin")
        for i in range(6):
            b.upload_bytes(DATA_SMALL[: 1000 + i], f"retry/small-{i}.bin")
        names = [f.file_name for f, _ in b.ls("retry", recursive=True)]
        assert len(names) == 7, names
        out = io.BytesIO()
        b.download_file_by_id(fv.id_).save(out)
        assert out.getvalue() == DATA_LARGE
    finally:
        control("faults", method="DELETE")


@check("b2 command-line tool: ls --versions, large upload with threads, download URL")
def _():
    env = dict(os.environ, B2_ENVIRONMENT=REALM, B2_APPLICATION_KEY_ID=KEY_ID, B2_APPLICATION_KEY=KEY)
    with tempfile.TemporaryDirectory() as d:
        env["B2_ACCOUNT_INFO"] = os.path.join(d, "account.sqlite")

        def b2(*args):
            return subprocess.run([B2_EXE, *args], env=env, check=True, capture_output=True, text=True).stdout

        bucket = state["bucket"].name
        src = os.path.join(d, "large.bin")
        with open(src, "wb") as f:
            f.write(DATA_LARGE)
        b2("file", "upload", "--no-progress", "--threads", "4", bucket, src, "cli/large.bin")
        b2("file", "upload", "--no-progress", bucket, src, "cli/large.bin")
        listing = b2("ls", "--versions", "-r", f"b2://{bucket}/cli/")
        assert listing.count("cli/large.bin") == 2, listing
        url = b2("file", "url", "--with-auth", f"b2://{bucket}/cli/large.bin").strip()
        with urllib.request.urlopen(url) as r:
            assert r.read() == DATA_LARGE
        b2("rm", "--versions", "-r", f"b2://{bucket}/cli/")


@check("b2 command-line tool: sync up, change, sync again, sync down")
def _():
    env = dict(os.environ, B2_ENVIRONMENT=REALM, B2_APPLICATION_KEY_ID=KEY_ID, B2_APPLICATION_KEY=KEY)
    with tempfile.TemporaryDirectory() as d:
        env["B2_ACCOUNT_INFO"] = os.path.join(d, "account.sqlite")

        def b2(*args):
            return subprocess.run([B2_EXE, *args], env=env, check=True, capture_output=True, text=True).stdout

        bucket = state["bucket"].name
        src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
        os.makedirs(os.path.join(src, "sub", "deeper"))
        files = {"a.txt": b"alpha", "sub/b.bin": os.urandom(300_000), "sub/deeper/c + d %.txt": b"gamma"}
        for rel, data in files.items():
            with open(os.path.join(src, rel), "wb") as f:
                f.write(data)
        b2("sync", "--no-progress", src, f"b2://{bucket}/synced")
        files["a.txt"] = b"alpha, changed"
        with open(os.path.join(src, "a.txt"), "wb") as f:
            f.write(files["a.txt"])
        os.utime(os.path.join(src, "a.txt"), (2_000_000_000, 2_000_000_000))
        b2("sync", "--no-progress", src, f"b2://{bucket}/synced")
        versions = b2("ls", "--versions", "-r", f"b2://{bucket}/synced/")
        assert versions.count("synced/a.txt") == 2, versions
        b2("sync", "--no-progress", f"b2://{bucket}/synced", dst)
        for rel, data in files.items():
            with open(os.path.join(dst, rel), "rb") as f:
                assert f.read() == data, rel
        b2("rm", "--versions", "-r", f"b2://{bucket}/synced/")


@check("unfinished large files: list and cancel")
def _():
    b = state["bucket"]
    started = api.services.large_file.start_large_file(b.id_, "unfinished.bin", "application/octet-stream", {})
    ids = [f.file_id for f in b.list_unfinished_large_files()]
    assert started.file_id in ids, ids
    api.cancel_large_file(started.file_id)
    assert started.file_id not in [f.file_id for f in b.list_unfinished_large_files()]


@check("bucket delete: refused while not empty, then allowed")
def _():
    other = state["other"]
    expect_error(lambda: api.delete_bucket(other))
    for fv, _ in other.ls("", recursive=True, latest_only=False):
        other.delete_file_version(fv.id_, fv.file_name)
    api.delete_bucket(other)
    assert other.name not in [x.name for x in api.list_buckets()]


@check("lifecycle rules: set through b2sdk, acting as the clock moves")
def _():
    # Last: it moves the emulator's clock two days on (b2sdk reauthorizes by itself).
    day = 86_400_000
    rules = [{
        "fileNamePrefix": "logs/",
        "daysFromUploadingToHiding": 1,
        "daysFromHidingToDeleting": 1,
        "daysFromStartingToCancelingUnfinishedLargeFiles": 1,
    }]
    b = api.create_bucket(PREFIX + "-lifecycle", "allPrivate", lifecycle_rules=rules)
    assert api.get_bucket_by_name(b.name).lifecycle_rules == rules
    overlapping = [
        {"fileNamePrefix": "a/", "daysFromHidingToDeleting": 1},
        {"fileNamePrefix": "a/b/", "daysFromHidingToDeleting": 1},
    ]
    expect_error(lambda: b.update(lifecycle_rules=overlapping))
    b.upload_bytes(b"log", "logs/a.txt")
    b.upload_bytes(b"kept", "kept.txt")
    started = api.services.large_file.start_large_file(b.id_, "logs/big.bin", "application/octet-stream", {})

    def versions():
        return [(fv.file_name, fv.action) for fv, _ in b.ls("", recursive=True, latest_only=False)]

    control("clock", {"advanceMs": day - 60_000})
    # b2_list_file_versions shows an unfinished large file as a "start" version.
    assert versions() == [("kept.txt", "upload"), ("logs/a.txt", "upload"), ("logs/big.bin", "start")], versions()
    assert [f.file_id for f in b.list_unfinished_large_files()] == [started.file_id]
    control("clock", {"advanceMs": 60_000})
    assert [fv.file_name for fv, _ in b.ls("", recursive=True)] == ["kept.txt"]
    assert versions() == [("kept.txt", "upload"), ("logs/a.txt", "hide"), ("logs/a.txt", "upload")], versions()
    assert list(b.list_unfinished_large_files()) == []
    control("clock", {"advanceMs": day})
    assert versions() == [("kept.txt", "upload"), ("logs/a.txt", "hide")], versions()


passed = sum(1 for _, ok in RESULTS if ok)
failed = len(RESULTS) - passed
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
