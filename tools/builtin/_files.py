"""``read_file`` / ``write_file``: text files confined to an allowed root directory."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from ..base import tool
from ..errors import ToolError

__all__ = [
    "DEFAULT_MAX_READ_BYTES",
    "FILE_ROOT_ENV",
    "FileContent",
    "FileWritten",
    "file_root",
    "read_file",
    "resolve_in_root",
    "write_file",
]

#: Environment variable naming the directory file tools are confined to.
FILE_ROOT_ENV = "STEPWEAVE_FILE_ROOT"
#: Default size cap of ``read_file``.
DEFAULT_MAX_READ_BYTES = 1024 * 1024


class FileContent(BaseModel):
    """A text file's content."""

    path: str = Field(description="Resolved absolute path of the file.")
    text: str = Field(description="Decoded content.")
    size_bytes: int = Field(description="Size of the file in bytes.")


class FileWritten(BaseModel):
    """What a write did."""

    path: str = Field(description="Resolved absolute path of the file.")
    bytes_written: int = Field(description="Bytes written by this call.")
    size_bytes: int = Field(description="Size of the file afterwards.")
    created: bool = Field(description="Whether the file did not exist before.")


def file_root() -> Path:
    """The directory file tools are confined to: ``$STEPWEAVE_FILE_ROOT``, else the working directory.

    Read at call time, symlinks resolved.
    """
    configured = os.environ.get(FILE_ROOT_ENV)
    root = Path(configured).expanduser() if configured else Path.cwd()
    try:
        resolved = root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ToolError(
            f"file root {str(root)!r} (from {FILE_ROOT_ENV if configured else 'the working directory'}) "
            "does not exist",
            retryable=False,
        ) from None
    if not resolved.is_dir():
        raise ToolError(f"file root {str(root)!r} is not a directory", retryable=False)
    return resolved


def resolve_in_root(path: str, root: Path | None = None) -> Path:
    """``path`` (relative to the root, or absolute) with symlinks resolved, if it stays inside the root.

    Raises a non-retryable ``ToolError`` naming ``path`` when it escapes the root.
    """
    if not path or "\0" in path:
        raise ToolError(f"invalid path {path!r}", retryable=False)
    base = file_root() if root is None else root
    try:
        resolved = (base / Path(path).expanduser()).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise ToolError(f"cannot resolve path {path!r}: {exc}", retryable=False) from None
    if not resolved.is_relative_to(base):
        raise ToolError(
            f"path {path!r} resolves to {str(resolved)!r}, outside the allowed root {str(base)!r} "
            f"(set {FILE_ROOT_ENV} to change the root)",
            retryable=False,
        )
    return resolved


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ToolError(f"unknown encoding {encoding!r}", retryable=False) from None


@tool(name="read_file", idempotent=True, read_only=True)
def read_file(
    path: str,
    encoding: str = "utf-8",
    max_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_READ_BYTES,
) -> FileContent:
    """Read a text file inside the allowed root directory.

    The root is $STEPWEAVE_FILE_ROOT, else the working directory; paths that resolve
    outside it (through '..', an absolute path or a symlink) are refused.

    Args:
        path: File path, relative to the root or absolute (inside the root).
        encoding: Text encoding of the file.
        max_bytes: Largest file accepted; a bigger one fails the call.
    """
    _check_encoding(encoding)
    resolved = resolve_in_root(path)
    try:
        with resolved.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise ToolError(f"file {path!r} is {size} bytes, over max_bytes={max_bytes}", retryable=False)
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ToolError(f"file {path!r} does not exist", retryable=False) from None
    except IsADirectoryError:
        raise ToolError(f"path {path!r} is a directory, not a file", retryable=False) from None
    except PermissionError:
        raise ToolError(f"permission denied reading {path!r}", retryable=False) from None
    if len(data) > max_bytes:  # grew while being read
        raise ToolError(f"file {path!r} is over max_bytes={max_bytes}", retryable=False)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ToolError(
            f"file {path!r} is not valid {encoding} (byte {exc.start}); pass the right `encoding`",
            retryable=False,
        ) from None
    return FileContent(path=str(resolved), text=text, size_bytes=len(data))


@tool(name="write_file", idempotent=False)
def write_file(
    path: str,
    content: str,
    encoding: str = "utf-8",
    append: bool = False,
    create_parents: bool = False,
) -> FileWritten:
    """Write (or append) text to a file inside the allowed root directory.

    The root is $STEPWEAVE_FILE_ROOT, else the working directory; paths that resolve
    outside it (through '..', an absolute path or a symlink) are refused. Text is written
    as given: no newline is added or translated.

    Args:
        path: File path, relative to the root or absolute (inside the root).
        content: Text to write.
        encoding: Text encoding to write with.
        append: Add to the end of the file instead of replacing it.
        create_parents: Create missing parent directories.
    """
    _check_encoding(encoding)
    resolved = resolve_in_root(path)
    try:
        data = content.encode(encoding)
    except UnicodeEncodeError as exc:
        raise ToolError(
            f"content cannot be encoded as {encoding} (character {exc.start})", retryable=False
        ) from None
    parent = resolved.parent
    if not parent.is_dir():
        if parent.exists():
            raise ToolError(f"parent of {path!r} is not a directory", retryable=False)
        if not create_parents:
            raise ToolError(
                f"directory {str(parent)!r} for {path!r} does not exist; pass create_parents=true",
                retryable=False,
            )
        parent.mkdir(parents=True, exist_ok=True)
    created = not resolved.exists()
    # O_NOFOLLOW: a symlink planted at the checked path since resolving is not followed.
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(resolved, flags, 0o666)
    except IsADirectoryError:
        raise ToolError(f"path {path!r} is a directory, not a file", retryable=False) from None
    except PermissionError:
        raise ToolError(f"permission denied writing {path!r}", retryable=False) from None
    except OSError as exc:
        raise ToolError(f"cannot open {path!r} for writing: {exc.strerror}", retryable=False) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        size = os.fstat(fh.fileno()).st_size
    return FileWritten(path=str(resolved), bytes_written=len(data), size_bytes=size, created=created)
