"""The whole product on one machine: `python -m local`.

The real model server stands in for SageMaker, the real Lambda handler runs behind an
API Gateway HTTP API (payload 2.0) emulation with the stack's CORS policy, and the real
site is served with the same generated `config.js` the cloud uses.
"""
