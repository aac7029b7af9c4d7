"""The LDAP schemas a BDII serves, as JSON package data (installed as ``bdii.glue``).

``glue13.json`` (GLUE 1.3), ``glue20.json`` (GLUE 2.0), ``bdii.json`` (the
legacy BDII's schema plus our o=infosys status entries) and ``core.json``
(the LDAP core and operational attributes) are rendered from OpenLDAP
``.schema`` files by ``render.py`` and committed, so the server needs no
schema files at run time; `bdii.core.schema.Schema.default()` loads them.
"""
