"""The Pulumi program: the stack's config -> every resource -> the stack outputs
(`components/stack.py`)."""

from components.stack import deploy

deploy()
