"""The monthly attribution report: month logic, the report model, and its renderers.

The gateway uses :mod:`cleanroom.reports.months` to resolve a section for a month; the report
job (``cleanroom report monthly``) fetches released sections over HTTP, builds a
:class:`cleanroom.reports.model.Report` per recipient and writes its files with
:mod:`cleanroom.reports.render`. Nothing here reads data or adds noise.
"""
