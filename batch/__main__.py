"""`python -m batch run|review|export`: the batch pipeline's command line.

    python -m batch run DIR --out OUT [--threshold 0.93] [--workers 2]
                        [--model-server URL | --artifact PATH]
    python -m batch review list (--out OUT | --bucket B) [--json]
    python -m batch review resolve NAME --label LABEL [--by WHO] (--out OUT | --bucket B)
                                   [--labels-from SPEC] [--sqlite PATH | --table NAME]
    python -m batch export --out DIR (--from OUT | --bucket B) [--images SOURCE]

Each command's module says more (`batch.runner`, `batch.review`, `batch.export`), and
`--help` shows its flags. Exit status 2 is always bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from batch import export, review, runner


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m batch", description="Classify folders of images, review, retrain."
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="run|review|export")
    for name, module, summary in (
        ("run", runner, "classify every image of a folder into results/, review/, failed/"),
        ("review", review, "list the items waiting for review, or resolve one"),
        ("export", export, "write the reviewed images as an ImageFolder for model.finetune"),
    ):
        sub = commands.add_parser(name, help=summary, description=summary)
        module.configure(sub)
        sub.set_defaults(handler=module.command)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
