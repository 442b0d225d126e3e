"""``read_file`` / ``write_file`` on real files, confined to a root directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import ToolError
from tools.builtin import FILE_ROOT_ENV, FileContent, FileWritten, read_file, write_file


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The allowed root, with a sibling ``outside.txt`` that must stay unreachable."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("secret")
    monkeypatch.setenv(FILE_ROOT_ENV, str(root))
    return root


async def test_write_then_read(root: Path) -> None:
    written = await write_file.invoke({"path": "notes/a.txt", "content": "héllo\r\n", "create_parents": True})
    assert isinstance(written, FileWritten)
    assert written.created is True
    assert written.bytes_written == len("héllo\r\n".encode())
    assert (root / "notes" / "a.txt").read_bytes() == "héllo\r\n".encode()
    content = await read_file.invoke({"path": "notes/a.txt"})
    assert isinstance(content, FileContent)
    assert content.text == "héllo\r\n"
    assert content.path == str((root / "notes" / "a.txt").resolve())


async def test_overwrite_and_append(root: Path) -> None:
    await write_file.invoke({"path": "log.txt", "content": "one\n"})
    again = await write_file.invoke({"path": "log.txt", "content": "two\n"})
    assert again.created is False
    appended = await write_file.invoke({"path": "log.txt", "content": "three\n", "append": True})
    assert appended.size_bytes == len("two\nthree\n")
    assert (root / "log.txt").read_text() == "two\nthree\n"


async def test_missing_parent_needs_create_parents(root: Path) -> None:
    with pytest.raises(ToolError, match="does not exist; pass create_parents=true") as info:
        await write_file.invoke({"path": "deep/er/x.txt", "content": "x"})
    assert info.value.retryable is False
    assert not (root / "deep").exists()


async def test_encoding(root: Path) -> None:
    await write_file.invoke({"path": "latin.txt", "content": "café", "encoding": "latin-1"})
    assert (root / "latin.txt").read_bytes() == b"caf\xe9"
    with pytest.raises(ToolError, match="not valid utf-8"):
        await read_file.invoke({"path": "latin.txt"})
    assert (await read_file.invoke({"path": "latin.txt", "encoding": "latin-1"})).text == "café"
    with pytest.raises(ToolError, match="unknown encoding 'klingon'"):
        await read_file.invoke({"path": "latin.txt", "encoding": "klingon"})


async def test_read_size_cap(root: Path) -> None:
    (root / "big.txt").write_text("x" * 2000)
    with pytest.raises(ToolError, match=r"'big\.txt' is 2000 bytes, over max_bytes=1000") as info:
        await read_file.invoke({"path": "big.txt", "max_bytes": 1000})
    assert info.value.retryable is False


async def test_missing_file_and_directory(root: Path) -> None:
    with pytest.raises(ToolError, match=r"file 'nope\.txt' does not exist"):
        await read_file.invoke({"path": "nope.txt"})
    (root / "sub").mkdir()
    with pytest.raises(ToolError, match="is a directory"):
        await read_file.invoke({"path": "sub"})
    with pytest.raises(ToolError, match="is a directory"):
        await write_file.invoke({"path": "sub", "content": "x"})


async def test_absolute_path_inside_the_root_is_allowed(root: Path) -> None:
    target = root / "abs.txt"
    await write_file.invoke({"path": str(target), "content": "ok"})
    assert (await read_file.invoke({"path": str(target)})).text == "ok"


async def test_dotdot_inside_the_root_is_allowed(root: Path) -> None:
    (root / "a").mkdir()
    (root / "b.txt").write_text("b")
    assert (await read_file.invoke({"path": "a/../b.txt"})).text == "b"


@pytest.mark.parametrize("escape", ["../outside.txt", "a/../../outside.txt", "ABSOLUTE"])
async def test_paths_escaping_the_root_are_rejected(root: Path, escape: str) -> None:
    path = str(root.parent / "outside.txt") if escape == "ABSOLUTE" else escape
    with pytest.raises(ToolError, match="outside the allowed root") as info:
        await read_file.invoke({"path": path})
    assert info.value.retryable is False
    assert repr(path) in str(info.value)
    with pytest.raises(ToolError, match="outside the allowed root"):
        await write_file.invoke({"path": path, "content": "pwned"})
    assert (root.parent / "outside.txt").read_text() == "secret"


async def test_symlinks_pointing_outside_are_rejected(root: Path) -> None:
    (root / "link.txt").symlink_to(root.parent / "outside.txt")
    (root / "linkdir").symlink_to(root.parent, target_is_directory=True)
    for path in ("link.txt", "linkdir/outside.txt", "linkdir/new.txt"):
        with pytest.raises(ToolError, match="outside the allowed root"):
            await read_file.invoke({"path": path})
        with pytest.raises(ToolError, match="outside the allowed root"):
            await write_file.invoke({"path": path, "content": "pwned"})
    assert (root.parent / "outside.txt").read_text() == "secret"
    assert not (root.parent / "new.txt").exists()


async def test_symlink_inside_the_root_is_followed(root: Path) -> None:
    (root / "real.txt").write_text("real")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert (await read_file.invoke({"path": "alias.txt"})).text == "real"


async def test_root_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FILE_ROOT_ENV, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    await write_file.invoke({"path": "here.txt", "content": "cwd"})
    assert (work / "here.txt").read_text() == "cwd"
    with pytest.raises(ToolError, match="outside the allowed root"):
        await read_file.invoke({"path": os.fspath(tmp_path)})


async def test_missing_root_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FILE_ROOT_ENV, str(tmp_path / "gone"))
    with pytest.raises(ToolError, match=f"file root .*gone.* \\(from {FILE_ROOT_ENV}\\) does not exist"):
        await read_file.invoke({"path": "x.txt"})


def test_policy() -> None:
    assert write_file.idempotent is False
    assert read_file.idempotent is True
