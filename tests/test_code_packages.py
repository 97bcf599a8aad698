"""Code package limits and zip safety: size limits, traversal, symlinks, zip bombs."""

import functools
import io
import os
import stat
import struct
import zipfile
import zlib

from conftest import b64, make_zip, python_fn, unique
from test_functions_api import HELLO, error


def create_zip(fgs, package):
    body = python_fn(unique("pkg"), "", code_type="zip", code_filename="code.zip", func_code={"file": b64(package)})
    return fgs.api("POST", "/functions", json=body)


def raw_zip(entries):
    """A zip written entry by entry, so names and modes are exactly as given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, data)
    return buf.getvalue()


def test_zip_over_50mb_is_refused(fgs):
    package = make_zip({"index.py": HELLO, "blob.bin": os.urandom(50 * 1024 * 1024 + 1024)})
    assert len(package) > 50 * 1024 * 1024
    error(create_zip(fgs, package), 413, "FSS.1071")


def test_zip_under_50mb_is_accepted(fgs):
    package = make_zip({"index.py": HELLO, "blob.bin": os.urandom(40 * 1024 * 1024)})
    assert create_zip(fgs, package).status_code == 200


def test_traversal_and_absolute_paths_are_refused(fgs):
    for name in ["../evil.py", "a/../../evil.py", "/etc/evil.py"]:
        package = raw_zip([("index.py", HELLO, 0o100644), (name, "x", 0o100644)])
        body = error(create_zip(fgs, package), 400, "FSS.1011")
        assert "not allowed" in body["error_msg"]


def test_escaping_symlinks_are_refused(fgs):
    for target in ["/etc/passwd", "../../outside", "../x"]:
        package = raw_zip([("index.py", HELLO, 0o100644), ("link", target, stat.S_IFLNK | 0o777)])
        body = error(create_zip(fgs, package), 400, "FSS.1011")
        assert "symlink" in body["error_msg"]


def test_symlink_inside_the_package_works(fgs):
    package = raw_zip([
        ("real.py", "def handler(event, context):\n    return 'via link'\n", 0o100644),
        ("index.py", "real.py", stat.S_IFLNK | 0o777),
    ])
    body = python_fn(unique("lnk"), "", code_type="zip", code_filename="code.zip", func_code={"file": b64(package)})
    fn = fgs.create(**body)
    r = fgs.invoke(fn["func_urn"])
    assert r.json()["result"] == "via link", r.text


def test_special_files_are_refused(fgs):
    package = raw_zip([("index.py", HELLO, 0o100644), ("fifo", "", stat.S_IFIFO | 0o644)])
    error(create_zip(fgs, package), 400, "FSS.1011")


def test_garbage_is_refused(fgs):
    error(create_zip(fgs, b"this is not a zip file"), 400, "FSS.1011")


@functools.lru_cache(maxsize=1)
def deflated_zeros():
    """1.6 GB of zeros, raw-deflated (about 1.6 MB), and its CRC-32."""
    size = 1600 * 1024 * 1024
    chunk = bytes(16 * 1024 * 1024)
    comp = zlib.compressobj(1, zlib.DEFLATED, -15)
    parts, crc = [], 0
    for _ in range(size // len(chunk)):
        parts.append(comp.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    parts.append(comp.flush())
    return b"".join(parts), size, crc


def test_zip_bomb_over_1500mb_unzipped_is_refused(fgs):
    """Refused from the declared sizes: nothing is unpacked."""
    data, size, crc = deflated_zeros()
    package = single_entry_zip("bomb.bin", data, size, crc)
    assert len(package) < 10 * 1024 * 1024
    body = error(create_zip(fgs, package), 400, "FSS.1011")
    assert "1572864000" in body["error_msg"]


def test_entry_lying_about_its_size_is_refused(fgs):
    """An entry that declares 10 bytes but inflates to 1.6 GB: the bytes actually inflated are
    counted, and extraction stops at the limit."""
    data, _, _ = deflated_zeros()
    package = single_entry_zip("liar.bin", data, 10, 0)
    body = error(create_zip(fgs, package), 400, "FSS.1011")
    assert "1572864000" in body["error_msg"]


def single_entry_zip(name, deflated, declared_size, crc):
    """A zip with one deflated entry whose header declares `declared_size` bytes."""
    name = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), declared_size, len(name), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, 8, 0, 0, crc, len(deflated),
                          declared_size, len(name), 0, 0, 0, 0, 0o100644 << 16, 0)
    offset = len(local) + len(name) + len(deflated)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), offset, 0)
    return local + name + deflated + central + name + end
