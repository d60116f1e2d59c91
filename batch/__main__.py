"""`python -m batch run|attach|review|export`: the batch pipeline's command line.

    python -m batch run DIR --out OUT [--threshold 0.93] [--workers 2]
                        [--model-server URL | --artifact PATH]
    python -m batch run s3://BUCKET/PREFIX/ --out s3://BUCKET/OUT/ --on sagemaker
                        [--stack-outputs FILE] [--model-version V]
                        [--instance-type T] [--instances N]
    python -m batch attach JOB [--region R] [--stop]
    python -m batch review list (--out OUT | --bucket B) [--json]
    python -m batch review resolve NAME --label LABEL [--by WHO] (--out OUT | --bucket B)
                                   [--labels-from SPEC] [--sqlite PATH | --table NAME]
    python -m batch export --out DIR (--from OUT | --bucket B) [--images SOURCE]

Each command's module says more (`batch.runner`, `batch.transform`, `batch.review`,
`batch.export`), and `--help` shows its flags. Exit status 2 is always bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from batch import export, review, runner, transform


def run(args: argparse.Namespace) -> int:
    """`run`: here (`batch.runner`), or on SageMaker (`batch.transform`)."""
    if args.on == "sagemaker":
        return transform.run_command(args, sys.stderr)
    if problem := transform.local_flags_problem(args):
        print(f"error: {problem}", file=sys.stderr)
        return runner.EXIT_USAGE
    return runner.command(args)


def configure_run(parser: argparse.ArgumentParser) -> None:
    runner.configure(parser)
    transform.configure(parser)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m batch", description="Classify folders of images, review, retrain."
    )
    commands = main.add_subparsers(
        dest="command", required=True, metavar="run|attach|review|export"
    )
    for name, configure, handler, summary in (
        (
            "run",
            configure_run,
            run,
            "classify every image of a folder into results/, review/, failed/",
        ),
        (
            "attach",
            transform.configure_attach,
            transform.attach_command,
            "watch a transform job of run --on sagemaker, then sort its outputs",
        ),
        (
            "review",
            review.configure,
            review.command,
            "list the items waiting for review, or resolve one",
        ),
        (
            "export",
            export.configure,
            export.command,
            "write the reviewed images as an ImageFolder for model.finetune",
        ),
    ):
        sub = commands.add_parser(name, help=summary, description=summary)
        configure(sub)
        sub.set_defaults(handler=handler)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
