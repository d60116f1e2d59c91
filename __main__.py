"""The Pulumi program: the stack's config -> every resource -> the stack outputs (`stack.py`)."""

from stack import deploy

deploy()
