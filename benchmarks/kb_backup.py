"""Knowledge-base export and import speed, against a plain ``tar`` of the same folder in the same run.

A KB is built from ``--docs`` development documents (half English Wikipedia summaries, half Chinese news; see
corpora.py) in a temporary root. Then, ``--repeat`` times each:

- ``kbqa export``: :func:`kbqa.knowledge.backup.export_kb` to a .tar (plain, uncompressed);
- ``kbqa import``: :func:`kbqa.knowledge.backup.import_kb` of that archive into a fresh root (checksum pass, staging,
  rows, index build and save, one commit), with the embedding model already loaded;
- ``tar -cf`` of the KB root (every KB folder and info.db, the way one would copy it by hand with the server
  stopped) and ``tar -xf`` of it into a fresh folder.

MB/s = archive bytes / seconds; chunks/s = the KB's chunks / seconds. Medians of the repeats.

    python benchmarks/kb_backup.py [--docs 200] [--repeat 3] [--write-results]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora import inews_dev, wiki_dev, write_files
from results_file import replace_section

from kbqa.embeddings.pool import EmbedderPool
from kbqa.knowledge import backup
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
SECTION = "## Knowledge-base backup and restore"
KB = "bench"


def _service(root: Path, pool: EmbedderPool) -> KnowledgeBaseService:
    settings = load_settings(REPO / "configs" / "settings.yaml", root=str(root), paths={"kb_root": str(root / "kb")})
    svc = KnowledgeBaseService(settings, embedders=pool)
    svc.create_tables()
    return svc


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="kbqa-backup-bench-"))
    try:
        pool = EmbedderPool(load_settings(REPO / "configs" / "settings.yaml").embedding)
        source = _service(work / "source", pool)
        source.create_kb(KB)
        half = args.docs // 2
        for corpus in (wiki_dev(half, 0), inews_dev(args.docs - half, 0)):
            write_files(corpus, source.folder(KB).content / corpus.name)
        t_ingest = _timed(lambda: source.ingest(KB))
        info = source.get_kb(KB)
        source.close()
        source = _service(work / "source", pool)
        content_bytes = sum(p.stat().st_size for p in source.folder(KB).content.rglob("*") if p.is_file())
        print(f"built {KB}: {info.file_count} files, {info.chunk_count} chunks in {t_ingest:.1f}s", flush=True)

        archive = work / "bench.kbqa.tar"
        plain = work / "plain.tar"
        rows: dict[str, list[float]] = {"export": [], "import": [], "tar -cf": [], "tar -xf": []}
        sizes: dict[str, int] = {}
        for i in range(args.repeat):
            archive.unlink(missing_ok=True)
            rows["export"].append(_timed(lambda: backup.export_kb(source, KB, archive)))
            sizes["export"] = sizes["import"] = archive.stat().st_size
            target = _service(work / f"target{i}", pool)
            rows["import"].append(_timed(lambda t=target: backup.import_kb(t, archive)))  # type: ignore[misc]
            assert target.get_kb(KB).chunk_count == info.chunk_count
            target.close()
            plain.unlink(missing_ok=True)
            tar_c = ["tar", "-cf", str(plain), "-C", str(work / "source"), "kb"]
            rows["tar -cf"].append(_timed(lambda c=tar_c: subprocess.run(c, check=True)))  # type: ignore[misc]
            sizes["tar -cf"] = sizes["tar -xf"] = plain.stat().st_size
            out = work / f"untar{i}"
            out.mkdir()
            rows["tar -xf"].append(
                _timed(lambda o=out: subprocess.run(["tar", "-xf", str(plain), "-C", str(o)], check=True))
            )  # type: ignore[misc]
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in rows.items()), flush=True)
        source.close()

        lines = [
            "| step | archive MiB | seconds (median) | MB/s | chunks/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for step, times in rows.items():
            sec = statistics.median(times)
            size = sizes[step]
            mib, mbs, cps = size / (1 << 20), size / 1e6 / sec, info.chunk_count / sec
            lines.append(f"| {step} | {mib:.1f} | {sec:.3f} | {mbs:.1f} | {cps:,.0f} |")
        table = "\n".join(lines)
        print(table)
        if args.write_results:
            intro = (
                f"Command: `python benchmarks/kb_backup.py --docs {args.docs} --repeat {args.repeat} --write-results`, "
                f"{time.strftime('%Y-%m-%d')}, {platform.machine()} with {os.cpu_count()} CPUs (shared with other "
                f"work: figures are noisy). KB: {info.file_count} development documents (half English Wikipedia "
                f"summaries, half Chinese news), {content_bytes / (1 << 20):.1f} MiB of files, {info.chunk_count} "
                "chunks of multilingual-e5-small (384 dimensions). Export = `kbqa kb export` to an uncompressed "
                ".tar under the KB's write lock; import = `kbqa kb import` into a fresh root (the whole archive read "
                "once for the checksums, then unpacked into staging, rows and keyword index written, FAISS index "
                "built from the stored vectors and saved, one commit), embedding model already loaded. `tar` = "
                "a plain `tar -cf` / `tar -xf` of the whole knowledge-base root (folders and info.db) in the same "
                "run, which is only safe with the server stopped. Medians of the repeats."
            )
            section = f"{SECTION}\n\n{textwrap.fill(intro, 120, break_on_hyphens=False)}\n\n{table}\n"
            replace_section(SECTION, section)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
