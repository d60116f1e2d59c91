"""The invalidation provider under the name stacks deployed before its rename stored.

A dynamic resource's state holds its provider pickled by reference, as
`components.config_invalidation.ConfigInvalidationProvider` for stacks deployed before
`CloudFrontInvalidation` moved to `components/cloudfront_invalidation.py`. `pulumi
destroy` and `pulumi refresh` unpickle that reference, so it must still resolve until
each stack's next `pulumi up` rewrites it (PROVIDER_VERSION 2 makes that up update every
invalidation). Delete this module once every stack has been updated since the rename.
"""

from components.cloudfront_invalidation import (
    CloudFrontInvalidationProvider as ConfigInvalidationProvider,
)

__all__ = ["ConfigInvalidationProvider"]
