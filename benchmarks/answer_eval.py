"""Answer quality on the development sets: each question goes through a real API server's
``/chat/knowledge_base_chat`` (stream=true) backed by the real LLM stack, and the answers are scored
(kbqa/evaluation/answer_eval.py: answer right, only the answer, unanswerables refused, right source cited,
first-token and total time).

By default the script builds (or reuses) the set's knowledge base under --workdir and starts the controller, a
worker with the bundled model (or --model-path), the OpenAI server and the API server itself, on free loopback ports,
with the settings of configs/settings.yaml and the prompts of configs/prompts.yaml. With --api-url it talks to a
running server instead, whose knowledge base --kb must already hold the set's documents (write them with
``python benchmarks/answer_sets.py --docs DIR`` and ``kbqa add answers-en DIR/en``).

    pip install -e '.[bench]'
    python benchmarks/answer_eval.py [--sets en,zh] [--limit N] [--json out.json] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from answer_sets import EN_SET, ZH_SET, kb_documents, write_documents  # noqa: E402

from kbqa.evaluation.answer_eval import (  # noqa: E402
    AnswerReport,
    ChatRequestOptions,
    ScoredAnswer,
    evaluate_answers,
    markdown_table,
)
from kbqa.evaluation.answer_set import load_answer_set  # noqa: E402
from kbqa.evaluation.gate_calibration import choose_threshold, gate_point  # noqa: E402
from kbqa.knowledge.service import KnowledgeBaseService  # noqa: E402
from kbqa.launcher.main import child_env  # noqa: E402
from kbqa.launcher.services import Selection, plan  # noqa: E402
from kbqa.launcher.supervisor import Supervisor  # noqa: E402
from kbqa.settings import Settings, load_settings  # noqa: E402

SETS = {"en": EN_SET, "zh": ZH_SET}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_config(work: Path, base_config: Path, overrides: dict[str, Any] | None = None) -> Path:
    """The project's settings with this run's paths and free loopback ports (root stays the project, so the
    prompts are the project's configs/prompts.yaml)."""
    base = _merge(yaml.safe_load(base_config.read_text(encoding="utf-8")) or {}, overrides or {})
    controller, worker, openai = free_port(), free_port(), free_port()
    ports = {
        "root": str(ROOT),
        "paths": {"kb_root": str(work / "kb"), "database_url": None, "log_dir": str(work / "logs")},
        "api": {"host": "127.0.0.1", "port": free_port(), "api_keys": []},
        "llm": {
            "controller": {"host": "127.0.0.1", "port": controller},
            "worker": {"host": "127.0.0.1", "port": worker, "controller_address": f"http://127.0.0.1:{controller}"},
            "openai_server": {
                "host": "127.0.0.1",
                "port": openai,
                "controller_address": f"http://127.0.0.1:{controller}",
                "api_keys": [],
            },
            "client": {"base_url": f"http://127.0.0.1:{openai}/v1", "api_key": None},
        },
    }
    path = work / "configs" / "settings.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_merge(base, ports), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def build_kb(settings: Settings, kb: str, lang: str) -> None:
    service = KnowledgeBaseService(settings)
    try:
        service.create_tables()
        if not service.exists(kb):
            service.create_kb(kb)
        write_documents(kb_documents(lang), service.folder(kb).content)
        report = service.ingest(kb)
        print(
            f"{kb}: {len(report.added)} added, {len(report.updated)} updated, {len(report.skipped)} unchanged, "
            f"{report.chunks} chunks in {report.seconds:.0f} s",
            flush=True,
        )
    finally:
        service.close()


def start_stack(settings: Settings, config: Path, model_path: str | None, timeout_s: float) -> Supervisor:
    services = frozenset({"controller", "model_worker", "openai_api", "api"})
    specs = {s.name: s for s in plan(settings, Selection(services=services, model_path=model_path), str(config))}
    sup = Supervisor(settings.log_dir, child_env())
    try:
        controller = sup.start(specs.pop("controller"))
        sup.wait_ready([controller], timeout_s)  # workers register at start-up
        sup.wait_ready([sup.start(s) for s in specs.values()], timeout_s)
    except BaseException:
        sup.stop_all(10)
        raise
    return sup


def _progress(result: ScoredAnswer) -> None:
    if result.expected:
        mark = "right" if result.correct else "WRONG"
        mark += ", only" if result.only else ""
    else:
        mark = "refused" if result.refused else "ANSWERED"
    first = f"{result.first_token_s:.1f}" if result.first_token_s is not None else "-"
    print(f"  {result.id:<7} {mark:<13} {first:>5} / {result.total_s:4.1f} s  {result.answer[:70]!r}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="en,zh", help="comma-separated: en, zh")
    ap.add_argument("--limit", type=int, help="only the first N answerable and N // 4 unanswerable questions per set")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--score-threshold", type=float, help="default: the server's kb.score_threshold")
    ap.add_argument("--model-name", help="default: the server's llm.client.model")
    ap.add_argument("--model-path", help="the worker's model (default: the bundled SmolLM2-135M-Instruct)")
    ap.add_argument("--api-url", help="a running API server (then nothing is started or built here)")
    ap.add_argument("--api-key", help="bearer key for --api-url")
    ap.add_argument("--kb", help="knowledge base name with --api-url (default answers-<set>)")
    ap.add_argument("--empty-answer", help="the server's api.empty_answer (default: from --config)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "settings.yaml", help="base settings")
    ap.add_argument("--workdir", type=Path, default=HERE / ".data" / "answers")
    ap.add_argument("--start-timeout", type=float, default=600)
    ap.add_argument("--json", type=Path, help="write every answer and score here")
    ap.add_argument("--markdown", type=Path, help="write the table here")
    gate = ap.add_mutually_exclusive_group()
    gate.add_argument("--no-gate", action="store_true", help="answer every question (api.answerability_gate off)")
    gate.add_argument("--gate-threshold", type=float, help="api.answerability_threshold for this run")
    gate.add_argument(
        "--calibrate-gate",
        action="store_true",
        help="run the gate without refusing (threshold 0), then print the threshold that refuses the most "
        "unanswerable questions for at most 0.03 less answer accuracy, and the scores at it",
    )
    ap.add_argument("--worker-backend", help="the worker's llm.worker.backend (default: the config's, auto)")
    args = ap.parse_args()
    api_overrides: dict[str, Any] = {}
    if args.no_gate:
        api_overrides["answerability_gate"] = False
    elif args.calibrate_gate:
        api_overrides.update(answerability_gate=True, answerability_threshold=0.0, answerability_thresholds={})
    elif args.gate_threshold is not None:
        api_overrides.update(
            answerability_gate=True, answerability_threshold=args.gate_threshold, answerability_thresholds={}
        )

    options = ChatRequestOptions(
        temperature=args.temperature,
        top_k=args.top_k,
        max_tokens=args.max_tokens,
        score_threshold=args.score_threshold,
        model_name=args.model_name,
    )
    langs = [s.strip() for s in args.sets.split(",") if s.strip()]
    sup: Supervisor | None = None
    if args.api_url:
        api_url, settings = args.api_url, load_settings(args.config)
    else:
        work = args.workdir.resolve()
        overrides: dict[str, Any] = {"api": api_overrides}
        if args.worker_backend:
            overrides["llm"] = {"worker": {"backend": args.worker_backend}}
        config = write_config(work, args.config, overrides)
        settings = load_settings(config)
        for lang in langs:
            build_kb(settings, f"answers-{lang}", lang)
        started = time.perf_counter()
        sup = start_stack(settings, config, args.model_path, args.start_timeout)
        print(f"services ready in {time.perf_counter() - started:.0f} s (logs in {settings.log_dir})", flush=True)
        api_url = f"http://127.0.0.1:{settings.api.port}"
    empty_answer = args.empty_answer if args.empty_answer is not None else settings.api.empty_answer
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    reports: list[AnswerReport] = []
    try:
        with httpx.Client(base_url=api_url, timeout=600, headers=headers, trust_env=False) as client:
            for lang in langs:
                items = load_answer_set(SETS[lang])
                if args.limit is not None:
                    answerable = [i for i in items if i.answerable][: args.limit]
                    items = answerable + [i for i in items if not i.answerable][: max(1, args.limit // 4)]
                kb = args.kb or f"answers-{lang}"
                print(f"{lang}: {len(items)} questions to {api_url} (KB {kb})", flush=True)
                reports.append(evaluate_answers(client, kb, items, options, empty_answer, lang, _progress))
    finally:
        if sup is not None:
            sup.stop_all(10)
    table = markdown_table(reports)
    print(table)
    if args.calibrate_gate:
        table += "\n\n" + _calibration(reports)
        print(_calibration(reports))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in reports], ensure_ascii=False, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")


def _calibration(reports: list[AnswerReport]) -> str:
    lines = [
        "| set | threshold | answer right (gate off) | answer right (gate on) | unanswerable refused |",
        "|---|---:|---:|---:|---:|",
    ]
    everything = [a for r in reports for a in r.answers]
    chosen = choose_threshold([r.answers for r in reports])
    for name, answers in [*((r.name, r.answers) for r in reports), ("all", everything)]:
        off = gate_point(answers, 0.0)
        on = gate_point(answers, chosen.threshold)
        lines.append(f"| {name} | {chosen.threshold:.4f} | {off.accuracy:.2f} | {on.accuracy:.2f} | {on.refused:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
