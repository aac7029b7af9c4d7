"""Resource-level information providers of the BDII and their templates.

Installed as ``bdii.providers`` (pyproject maps the top-level ``providers/``
directory there). Each provider is an executable module that prints GLUE
LDIF on stdout, exactly as the BDII runs any third-party provider, e.g.
``python -m bdii.providers.demo``. ``rendering`` holds the shared jinja2
environment; ``templates/`` and ``*.conf`` are package data.
"""
