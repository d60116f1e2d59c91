"""The Lambda between API Gateway (HTTP API, payload 2.0) and the SageMaker endpoint.

Standard library and boto3 only: the Lambda runtime provides both, so the deployment zip is
this package alone. The handler string is `proxy.handler.handler`.
"""
