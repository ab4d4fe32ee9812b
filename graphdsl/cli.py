"""`python -m graphdsl` / `graphdsl`: run, check and inspect.

User errors are caught here once and printed as diagnostics with an exit code (docs/errors.md); an
unexpected exception is reported as an internal error in one paragraph, with the traceback only when
GRAPHDSL_DEBUG=1. Heavy modules are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from graphdsl.diagnostics import ExitCode, GraphdslError, render_all, to_json

ISSUES_URL = "https://github.com/graphdsl/graphdsl/issues"


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run a script on a model, verify the result and write it",
                       description="Run SCRIPT on a model, verify the result against the input with ONNX "
                                   "Runtime, print a report, and write the outputs only if it verified.")
    p.add_argument("script", type=Path)
    p.add_argument("-i", "--input", type=Path, help="the model (overrides the script's `model`)")
    p.add_argument("-o", "--output", type=Path, help="where to write the result (overrides the last `save`)")
    p.add_argument("--verify-each", action="store_true", help="check and compare after every pass")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the ONNX Runtime comparison (onnx.checker still runs)")
    p.add_argument("--force", action="store_true", help="write outputs even when verification failed")
    p.add_argument("--atol", type=float, help="absolute tolerance (overrides the script's `verify`)")
    p.add_argument("--rtol", type=float, help="relative tolerance (overrides the script's `verify`)")
    p.add_argument("--overwrite-input", action="store_true", help="allow an output to replace the input model")
    p.add_argument("--report", type=Path, metavar="FILE", help="also write the report (.html, .svg or .json)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_run)


def _add_check(sub) -> None:
    p = sub.add_parser("check", help="parse and check a script without changing anything",
                       description="Parse SCRIPT and check it (syntax, imports, ops, attributes, and the "
                                   "model's tensor/node names when a model is known). Writes nothing.")
    p.add_argument("script", type=Path)
    p.add_argument("-i", "--input", type=Path, help="the model to check names against")
    p.add_argument("--json", action="store_true", help="print diagnostics as JSON")
    p.set_defaults(func=cmd_check)


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="show a model's inputs, outputs, ops and node names",
                       description="Summarize MODEL: I/O signature, op histogram, parameters; with "
                                   "--nodes, every node's name, op, inputs and outputs.")
    p.add_argument("model", type=Path)
    p.add_argument("--nodes", action="store_true", help="list every node")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_inspect)


def _add_match(sub) -> None:
    p = sub.add_parser("match", help="list every instance of the script's rules, changing nothing",
                       description="Run SCRIPT's passes in memory and, at each rule set, list every instance "
                                   "of every rule: the matched nodes and what each variable captured. Nothing "
                                   "is written.")
    p.add_argument("script", type=Path)
    p.add_argument("-i", "--input", type=Path, help="the model (overrides the script's `model`)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_match)


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="show why a rule does not match: the closest attempt and where it failed",
                       description="Try RULE of SCRIPT from every possible anchor node of the model and show "
                                   "the attempt that got furthest: the pattern nodes it matched and the one it "
                                   "failed at, with the reason (op, attribute, constant, condition, consumer).")
    p.add_argument("script", type=Path)
    p.add_argument("rule", help="the rule's name (`replace` rules are FILE:LINE, e.g. fusions:12)")
    p.add_argument("-i", "--input", type=Path, help="the model (overrides the script's `model`)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_explain)


COMMANDS: tuple[Callable, ...] = (_add_run, _add_check, _add_inspect, _add_match, _add_explain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphdsl", description="ONNX graph surgery in a small language, checked with ONNX Runtime.",
        epilog="exit codes: 0 ok, 1 verification failed, 2 script error, 3 model or environment error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GraphdslError as e:
        _print_diagnostics(e.diagnostics, getattr(args, "json", False))
        return int(e.exit_code)
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place an unexpected error becomes a message
        if os.environ.get("GRAPHDSL_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(e).__name__}: {e}\n  = this is a bug in graphdsl, not in your script; "
              f"please report it at {ISSUES_URL} with the script and model\n  = set GRAPHDSL_DEBUG=1 for "
              "the traceback", file=sys.stderr)
        return int(ExitCode.INTERNAL_ERROR)


def _print_diagnostics(diagnostics, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"diagnostics": [to_json(d) for d in diagnostics]}, indent=2))
    else:
        print(render_all(diagnostics), file=sys.stderr)


def _console(quiet: bool = False):
    from rich.console import Console

    return Console(quiet=quiet, highlight=False)


REPORT_SUFFIXES = (".html", ".svg", ".json")


def cmd_run(args) -> int:
    import graphdsl

    if args.report and args.report.suffix not in REPORT_SUFFIXES:  # refuse before any work is done
        build_parser().error(f"--report takes a file ending in {', '.join(REPORT_SUFFIXES)}: {args.report}")

    pipeline = graphdsl.compile(args.script)
    console = _console(args.quiet or args.json)
    result = pipeline.run(args.input, output=args.output, verify_each=args.verify_each, no_verify=args.no_verify,
                          force=args.force, atol=args.atol, rtol=args.rtol, overwrite_input=args.overwrite_input,
                          console=console, quiet=args.quiet or args.json)
    if args.json:
        print(json.dumps(result.report.to_json(), indent=2, sort_keys=True))
    else:
        console.print(result.report)
    if args.report:
        result.report.save(args.report)
    return int(result.exit_code)


def cmd_check(args) -> int:
    import graphdsl

    pipeline = graphdsl.compile(args.script)
    model_path = args.input or pipeline.model_path
    if model_path:
        from graphdsl.onnxio import read_model

        pipeline.check(read_model(model_path))
    if args.json:
        print(json.dumps({"diagnostics": []}))
    else:
        where = f" against {model_path}" if model_path else " (no model: tensor and node names not checked)"
        print(f"{args.script}: ok, {len(pipeline.passes)} statement(s) checked{where}")
    return int(ExitCode.OK)


def cmd_inspect(args) -> int:
    from graphdsl.onnxio import read_model
    from graphdsl.report import model_summary
    from graphdsl.report.inspect import NodeTable

    loaded = read_model(args.model)
    summary = model_summary(loaded.graph)
    if args.json:
        data = summary.to_json()
        if args.nodes:
            data["nodes"] = NodeTable(loaded.graph).to_json()
        print(json.dumps(data, indent=2, sort_keys=True))
        return int(ExitCode.OK)
    console = _console()
    console.print(summary)
    if args.nodes:
        console.print(NodeTable(loaded.graph))
    return int(ExitCode.OK)


def _load_for_rules(args):
    import graphdsl
    from graphdsl.run import load_input

    pipeline = graphdsl.compile(args.script)
    loaded = load_input(args.input, pipeline)
    pipeline.check(loaded)
    return pipeline, loaded


def cmd_match(args) -> int:
    from graphdsl.match import find_instances
    from graphdsl.match.render import MatchReport, RuleSetMatches
    from graphdsl.match.session import rule_sets

    pipeline, loaded = _load_for_rules(args)
    report = MatchReport(str(args.script), str(loaded.path or args.input))
    for stop in rule_sets(pipeline, loaded):
        report.sets.append(RuleSetMatches(stop.rules, find_instances(stop.graph, stop.rules)))
    _show(report, args.json)
    return int(ExitCode.OK)


def cmd_explain(args) -> int:
    from graphdsl.match import explain
    from graphdsl.match.render import ExplainReport
    from graphdsl.match.session import find_rule, rule_sets

    pipeline, loaded = _load_for_rules(args)
    rule = find_rule(pipeline, args.rule)
    stop = next(s for s in rule_sets(pipeline, loaded) if any(r is rule for r in s.rules))
    _show(ExplainReport(explain(stop.graph, rule)), args.json)
    return int(ExitCode.OK)


def _show(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        _console().print(report)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
