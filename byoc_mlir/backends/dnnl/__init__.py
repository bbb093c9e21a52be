"""The ``dnnl`` backend: oneDNN 3 from PyPI, the BYOC paper's own case study."""
