"""The stack as the Automation API test deploys it to moto: `__main__.py` without
CloudFront's response headers policy, which moto cannot create (StaticSite warns).

Only tests/integration/test_stack_lifecycle.py runs it, as the `__main__.py` of a
temporary copy of the project; a real stack runs the repository's `__main__.py`, and no
stack config can switch the headers off.
"""

from components.stack import deploy

deploy(security_headers=False)
