"""The stack's reusable Pulumi components and dynamic providers, plus the pure-Python
pieces the local runtime shares with them (`config_js`, `cors`, `content_security_policy`)."""
