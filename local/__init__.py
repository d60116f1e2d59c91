"""The whole product on one machine: `python -m local`.

The real model server stands in for SageMaker, the real Lambda handler runs behind an
API Gateway HTTP API (payload 2.0) emulation, and the site and the API share one origin
as CloudFront serves them, with the same generated `config.js`, Content-Security-Policy
and origin header the cloud uses. The API's own port stands in for its `execute-api` URL.
"""
