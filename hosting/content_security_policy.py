"""The site's Content-Security-Policy, one text for CloudFront and the local runtime.

No inline code, nothing from other origins, and requests (`connect-src`) only where the
caller says the API is. Pure standard library: the local runtime imports it without Pulumi.
"""

from __future__ import annotations


def content_security_policy(connect_src: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            # Previews of the chosen image are blob: or data: URLs.
            "img-src 'self' data: blob:",
            "font-src 'self'",
            "manifest-src 'self'",
            f"connect-src {connect_src}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        )
    )
