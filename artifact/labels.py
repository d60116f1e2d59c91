"""The class names an archive answers with: ImageNet's, or a `labels.txt` of your own.

Standard library only: `python -m model.package --labels` reads the file, fine-tuning
writes it, and readers of a built archive tell its label set from `metadata.json`
(`artifact.metadata`) without torch. Telling ImageNet's list apart takes torchvision's,
so `model.labels.label_set` decides it when the archive is built.
"""

from __future__ import annotations

from pathlib import Path

IMAGENET_LABEL_SET = "imagenet"
"""`metadata.json` `label_set`: exactly torchvision's 1000 ImageNet categories."""
CUSTOM_LABEL_SET = "custom"
"""`metadata.json` `label_set`: any other list (a fine-tuned head, an imported model)."""
LABEL_SETS = (IMAGENET_LABEL_SET, CUSTOM_LABEL_SET)
MAX_LABEL_CHARS = 200


class LabelsError(ValueError):
    """The labels file cannot be used; the message says why."""


def read_labels(path: Path) -> list[str]:
    """One label per line, in output order. Blank lines around the list are ignored; a
    blank line inside it or fewer than 2 labels is an error. Duplicates are allowed, as
    in ImageNet's own list ("crane" the bird and the machine): `index` tells them apart."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: files saved by Windows editors
    except FileNotFoundError:
        raise LabelsError(f"--labels {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LabelsError(f"--labels {path}: cannot read it as UTF-8 text ({error})") from error
    labels = [line.strip() for line in text.strip().splitlines()]
    for number, label in enumerate(labels, start=1):
        if not label:
            raise LabelsError(f"--labels {path}: line {number} is blank; one label per line")
        if len(label) > MAX_LABEL_CHARS:
            raise LabelsError(
                f"--labels {path}: line {number} is longer than {MAX_LABEL_CHARS} characters"
            )
    if len(labels) < 2:
        raise LabelsError(f"--labels {path}: {len(labels)} label(s); a classifier needs at least 2")
    return labels


def write_labels(labels: list[str], path: Path) -> None:
    path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
