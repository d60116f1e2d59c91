"""Packaging and fine-tuning with torch: ``python -m model.package`` and
``python -m model.finetune``. The only package that imports torch; what the archives they
build hold is ``artifact``'s, and what serves them is ``serving``'s."""
