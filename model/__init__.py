"""MobileNetV2 image classifier: packaging (``model.package``), the SageMaker handler
(``model/code/inference.py``) and a local SageMaker-compatible server (``model.serve``)."""
