"""Resource-level information providers of the BDII and their templates.

Installed as ``bdii.providers`` (pyproject maps the top-level ``providers/``
directory there). Each provider is an executable module that prints GLUE
LDIF on stdout, exactly as the BDII runs any third-party provider, e.g.
``python -m bdii.providers.site -c etc/providers/site.conf``. ``common``
holds what they share, ``rendering`` the jinja2 environment; ``templates/``
is package data. The demo site of ``bdii serve`` without ``-c`` runs them on
the configurations in ``bdii/default/providers/``.
"""
