"""The Pulumi program: the stack's config -> every resource -> the stack outputs, as the
`image_classifier` package deploys it for any program (`components/stack.py`)."""

from image_classifier import deploy

deploy()
