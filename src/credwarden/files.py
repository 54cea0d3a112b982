"""Reading a file a user named: a regular file of bounded size, or a clear error. A FIFO, a
device or a directory given where a file belongs is refused instead of blocking or failing
halfway (open() on a FIFO waits for a writer forever)."""

from __future__ import annotations

import os
import stat

from .errors import ValidationError


def read_user_file(path: str, *, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them."""
    shown = path if len(path) <= 200 else path[:197] + "..."
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValidationError(
            f"cannot read the {what} {shown}: {exc.strerror or type(exc).__name__}",
            hint="check the path and its permissions",
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ValidationError(
                f"the {what} {shown} is {kind}", hint="give the path of a regular file"
            )
        if st.st_size > limit:
            raise ValidationError(
                f"the {what} {shown} is too large ({st.st_size} bytes; at most {limit})"
            )
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ValidationError(f"the {what} {shown} is too large (at most {limit} bytes)")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ValidationError(
            f"cannot read the {what} {shown}: {exc.strerror or type(exc).__name__}"
        ) from None
    finally:
        os.close(fd)


def read_user_text(path: str, *, limit: int, what: str = "file") -> str:
    """`read_user_file` as UTF-8 text."""
    data = read_user_file(path, limit=limit, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(
            f"the {what} {path[:200]} is not UTF-8 text", hint="save it as UTF-8"
        ) from None
