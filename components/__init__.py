"""The stack's reusable Pulumi components and dynamic providers; Pulumi only (the pure pieces
they share with the local runtime live in `hosting/`)."""
