"""`claimbench data list|verify|fetch` against a local HTTP server (no network needed).

The server serves a small made-up family `testfam/`: two good files, one whose bytes do not match
its checksum, one the server does not have, and a zip archive holding a file in a subfolder. The
checksum table and the source list are monkeypatched to know these files.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import socket
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import suites.data as data
from suites.data import cli
from suites.data.sources import Source, archive, plain

GOOD = {"testfam/good.txt": b"good file\n", "testfam/sub/other.txt": b"another good file\n"}
BAD = "testfam/bad.txt"  # served with other bytes than its checksum says
GONE = "testfam/gone.txt"  # the server does not have it
ZIPPED = "testfam/arc/zipped.txt"  # only inside archives/testfam.zip, as pack/zipped.txt
ZBAD = "testfam/arc/zbad.txt"  # inside the archive too, with other bytes than its checksum says


def _sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


@pytest.fixture
def server(tmp_path):
    """A mirror laid out like a data directory, served on 127.0.0.1 from a thread."""
    root = tmp_path / "mirror"
    for relpath, blob in GOOD.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(blob)
    (root / BAD).write_bytes(b"these are not the bytes the checksum names\n")
    (root / "archives").mkdir()
    with zipfile.ZipFile(root / "archives" / "testfam.zip", "w") as zf:
        zf.writestr("pack/zipped.txt", b"from the archive\n")
        zf.writestr("pack/zbad.txt", b"not what the checksum says\n")
        zf.writestr("pack/README", b"not wanted\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_GET(self):
            if not self.path.startswith("/cut/"):
                return super().do_GET()
            # A connection that drops mid-file: promises 1000 bytes, sends 10, closes.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def testfam(monkeypatch, server):
    """Teach the checksum table and the source list about testfam/ (canonical downloads on the server)."""
    sha = {**{p: _sha(b) for p, b in GOOD.items()}, BAD: _sha(b"the real bad.txt\n"), GONE: _sha(b"gone\n")}
    sha.update({ZIPPED: _sha(b"from the archive\n"), ZBAD: _sha(b"the real zbad.txt\n")})
    source = Source(
        folder="testfam", name="Test family", url=f"{server}/about", licence="test licence",
        citation="Nobody, A test family, 2026", how="copy the files into testfam/", sha256=sha,
        downloads=(*(plain(f"{server}/{p}", p) for p in (*GOOD, BAD, GONE)),
                   archive(f"{server}/archives/testfam.zip", {ZIPPED: "zipped.txt", ZBAD: "zbad.txt"})),
    )  # fmt: skip
    for relpath, digest in sha.items():
        monkeypatch.setitem(data.SHA256, relpath, digest)
    monkeypatch.setattr(data, "SOURCES", (*data.SOURCES, source))
    monkeypatch.setitem(data.FAMILIES, "testfam", (source,))
    monkeypatch.setattr(cli, "suite_entries", lambda: ([], []))  # no suite needs importing here
    return source


def claimbench_data(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="claimbench")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return cli.run(parser.parse_args(["data", *argv]))


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_fetch_through_mirror_writes_verified_files(testfam, server, tmp_path, capsys):
    dest = tmp_path / "data"  # created by fetch
    assert claimbench_data("fetch", *GOOD, "--mirror", server, "--data-dir", str(dest), "--no-progress") == 0
    assert files_under(dest) == GOOD
    assert "2 fetched and verified" in capsys.readouterr().out
    # A second run finds them verified and downloads nothing.
    assert claimbench_data("fetch", *GOOD, "--mirror", server, "--data-dir", str(dest), "--no-progress") == 0
    assert "0 fetched and verified, 2 already here" in capsys.readouterr().out


def test_corrupt_download_is_reported_and_nothing_is_left(testfam, server, tmp_path, capsys):
    dest = tmp_path / "data"
    assert claimbench_data("fetch", BAD, "--mirror", server, "--data-dir", str(dest), "--no-progress") == 1
    out = capsys.readouterr().out
    assert f"{BAD}: the file downloaded from {server}/{BAD} does not match its checksum" in out
    assert "so it was not written" in out
    assert files_under(dest) == {}  # neither the file nor a temporary .part copy
    assert list(dest.iterdir()) == []  # and no folder made for it


def test_a_download_cut_short_leaves_nothing(testfam, server, tmp_path, capsys):
    dest = tmp_path / "data"
    mirror = f"{server}/cut"
    assert claimbench_data("fetch", *GOOD, "--mirror", mirror, "--data-dir", str(dest), "--no-progress") == 1
    out = capsys.readouterr().out
    assert "testfam/good.txt: download cut short (10 of 1000 bytes); run fetch again" in out
    assert files_under(dest) == {} and list(dest.iterdir()) == []


def test_missing_file_gives_a_clear_error(testfam, server, tmp_path, capsys):
    dest = tmp_path / "data"
    assert claimbench_data("fetch", GONE, "--mirror", server, "--data-dir", str(dest), "--no-progress") == 1
    out = capsys.readouterr().out
    assert f"{GONE}: not found at {server}/{GONE} (HTTP 404" in out
    assert "Source: Test family" in out and "by hand: copy the files into testfam/" in out
    assert files_under(dest) == {}


def test_a_whole_family_fetches_what_it_can(testfam, server, tmp_path, capsys):
    dest = tmp_path / "data"
    assert claimbench_data("fetch", "testfam", "--mirror", server, "--data-dir", str(dest), "--no-progress") == 1
    assert files_under(dest) == GOOD  # the mirror has no arc/*.txt: only archives/testfam.zip
    out = capsys.readouterr().out
    assert "2 fetched and verified, 0 already here, 4 failed" in out
    assert out.count("FAILED:") == 4


def test_canonical_archive_is_extracted_to_the_loader_layout(testfam, tmp_path, capsys):
    dest = tmp_path / "data"
    assert claimbench_data("fetch", ZIPPED, "--data-dir", str(dest), "--no-progress") == 0
    assert files_under(dest) == {ZIPPED: b"from the archive\n"}  # only the wanted member, no archive left
    # Both members from one download: the good one is placed, the corrupt one named and not written.
    assert claimbench_data("fetch", "testfam/arc", "--data-dir", str(dest), "--no-progress") == 1
    out = capsys.readouterr().out
    assert f"{ZBAD}: the file downloaded from" in out and "0 fetched and verified, 1 already here, 1 failed" in out
    (dest / ZIPPED).unlink()
    assert claimbench_data("fetch", "testfam/arc", "--data-dir", str(dest), "--no-progress") == 1
    assert files_under(dest) == {ZIPPED: b"from the archive\n"}
    assert "1 fetched and verified, 0 already here, 1 failed" in capsys.readouterr().out


def test_canonical_plain_files_and_a_folder_prefix(testfam, tmp_path):
    dest = tmp_path / "data"
    assert claimbench_data("fetch", "testfam/sub", "--data-dir", str(dest), "--no-progress") == 0
    assert files_under(dest) == {"testfam/sub/other.txt": GOOD["testfam/sub/other.txt"]}


def test_offline_says_there_is_no_network_and_how_to_work_around(testfam, tmp_path, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dest = tmp_path / "data"
    mirror = f"http://127.0.0.1:{port}"
    assert claimbench_data("fetch", *GOOD, "--mirror", mirror, "--data-dir", str(dest), "--no-progress") == 1
    out = capsys.readouterr().out
    assert "no network" in out and "--mirror URL" in out and "by hand" in out
    assert out.count("FAILED:") == 1  # stops at the first unreachable host instead of timing out per file
    assert files_under(dest) == {}


def test_a_present_corrupt_file_is_kept_not_overwritten(testfam, server, tmp_path, capsys):
    dest = tmp_path / "data"
    (dest / "testfam").mkdir(parents=True)
    (dest / "testfam" / "good.txt").write_bytes(b"edited by hand\n")
    assert claimbench_data("fetch", "testfam/good.txt", "--mirror", server, "--data-dir", str(dest)) == 1
    assert (dest / "testfam" / "good.txt").read_bytes() == b"edited by hand\n"
    assert "testfam/good.txt in the data directory" in capsys.readouterr().out


def test_unknown_name_is_bad_input(testfam, tmp_path, capsys):
    assert claimbench_data("fetch", "NoSuchThing", "--data-dir", str(tmp_path)) == 2
    assert "unknown suite or dataset 'NoSuchThing'" in capsys.readouterr().err


def test_verify_flags_a_corrupt_file_without_deleting_it(testfam, tmp_path, capsys):
    dest = tmp_path / "data"
    for relpath, blob in GOOD.items():
        (dest / relpath).parent.mkdir(parents=True, exist_ok=True)
        (dest / relpath).write_bytes(blob)
    assert claimbench_data("verify", "--data-dir", str(dest)) == 0
    assert "2 verified, 0 corrupt" in capsys.readouterr().out
    flipped = bytearray(GOOD["testfam/sub/other.txt"])
    flipped[3] ^= 1  # same size and name, one bit off
    (dest / "testfam/sub/other.txt").write_bytes(bytes(flipped))
    assert claimbench_data("verify", "--data-dir", str(dest)) == 1
    out = capsys.readouterr().out
    assert "CORRUPT: dataset file testfam/sub/other.txt" in out and "1 verified, 1 corrupt" in out
    assert (dest / "testfam/sub/other.txt").read_bytes() == bytes(flipped)
    corrupt_line = next(line for line in out.splitlines() if line.startswith("CORRUPT"))
    assert str(tmp_path) not in corrupt_line  # files are named relative to the data directory...
    assert f"files in {dest}" in out  # ...which the summary names as the path in use


def test_list_shows_presence_size_source_and_claims(testfam, monkeypatch, tmp_path, capsys):
    dest = tmp_path / "data"
    (dest / "testfam").mkdir(parents=True)
    (dest / "testfam" / "good.txt").write_bytes(GOOD["testfam/good.txt"])
    (dest / "testfam" / "bad.txt").write_bytes(b"wrong\n")
    used = cli.Entry("Good", "tiny", ("testfam/good.txt",), "test", claims=("tiny.a", "tiny.b"))
    monkeypatch.setattr(cli, "suite_entries", lambda: ([used], []))
    assert claimbench_data("list", "--data-dir", str(dest)) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines() if line.startswith(("tiny", "-  "))}
    assert "verified" in rows["Good"] and "10 B" in rows["Good"] and "tiny.a, tiny.b" in rows["Good"]
    assert "CORRUPT" in rows["testfam"] and "(no suite uses it yet)" in rows["testfam"]
    assert "missing" in rows["testfam/sub"] and "missing" in rows["testfam/arc"]


def test_list_names_licence_and_citation(testfam, tmp_path, capsys):
    assert claimbench_data("list", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "licence: test licence" in out and "cite: Nobody, A test family, 2026" in out
    assert "[uea]" in out and "Bagnall" in out  # real families are listed even when no suite uses them


def test_claims_needing_a_dataset_follow_the_experiments():
    exp = SimpleNamespace(name="main", tasks={"ECG": {"name": "ECG", "x": "e"}, "libras": {}, "movielens": {}})
    other = SimpleNamespace(name="speed", tasks={"model": {}})
    suite = SimpleNamespace(
        profiles={"smoke": None},
        experiments=lambda profile: [exp, other],
        claims=[
            SimpleNamespace(id="acc.mean", experiment="main", treatment={"method": "gtn"}, baseline=None),
            SimpleNamespace(id="acc.ECG", experiment="main", treatment={"method": "gtn", "task": "ECG"}, baseline=None),
            SimpleNamespace(id="acc.pair", experiment="main", treatment={"task": ["ECG", "x"]}, baseline={}),
            SimpleNamespace(id="speed", experiment="speed", treatment={"method": "gtn"}, baseline=None),
        ],
    )
    tasks = cli._tasks_by_experiment(suite)
    assert cli._claims_needing(suite, "ECG", tasks) == ("acc.mean", "acc.ECG", "acc.pair")
    assert cli._claims_needing(suite, "Libras", tasks) == ("acc.mean",)
    assert cli._claims_needing(suite, "movielens-100k", tasks) == ("acc.mean",)  # names match loosely
    assert cli._claims_needing(suite, "Wafer", tasks) is None  # no task names it: unknown, not "none"
    assert cli._claims_needing(suite, "ERing", tasks) is None  # a one-letter argument is no match


def test_a_suite_or_dataset_name_fetches_its_data_folders(testfam, server, monkeypatch, tmp_path, capsys):
    other = cli.Entry("Other", "tiny", ("testfam/sub/other.txt",), "test")
    model = cli.Entry("tiny-model", "tiny", (), "pip package", package="claimbench_no_such_package")
    good = cli.Entry("Good", "small", ("testfam/good.txt",), "test")
    monkeypatch.setattr(cli, "suite_entries", lambda: ([other, model, good], []))
    dest = tmp_path / "data"
    assert claimbench_data("fetch", "tiny", "--mirror", server, "--data-dir", str(dest), "--no-progress") == 0
    assert files_under(dest) == {"testfam/sub/other.txt": GOOD["testfam/sub/other.txt"]}
    assert "tiny-model: carried by the pip package claimbench_no_such_package" in capsys.readouterr().out
    # A dataset brings its whole folder: testfam/ also holds bad.txt and gone.txt.
    assert claimbench_data("fetch", "Good", "--mirror", server, "--data-dir", str(dest), "--no-progress") == 1
    assert files_under(dest) == GOOD
    assert "1 fetched and verified, 0 already here, 2 failed" in capsys.readouterr().out
