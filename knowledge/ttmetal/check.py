"""Every static check of a TT-Metal project, in one call (no compiler, no device, no files written)."""

from __future__ import annotations

from kernelwright.domain import Diagnostic
from knowledge.ttmetal.checks_api import check_api_drift, check_kernel_bodies
from knowledge.ttmetal.checks_args import check_arguments, check_kernel_setup
from knowledge.ttmetal.checks_cb import check_circular_buffers
from knowledge.ttmetal.checks_layout import check_layout
from knowledge.ttmetal.checks_work import check_work_split
from knowledge.ttmetal.model import ProjectModel
from knowledge.ttmetal.project import Project
from knowledge.ttmetal.tables import load_tables

__all__ = ["check_project"]


def check_project(project: Project, version: str | None = None) -> list[Diagnostic]:
    """Diagnostics for `project` assuming TT-Metal `version` (the newest in the tables when None).

    Errors mean the project cannot work as written; warnings are shown but do not fail it.
    """
    tables = load_tables()
    assumed = tables.resolve_version(version)
    model = ProjectModel.read(project)
    found = check_layout(project)
    for source in project.sources.values():
        found += check_api_drift(source, tables, assumed)
    found += check_kernel_bodies(model, tables, assumed)
    found += check_kernel_setup(model)
    found += check_arguments(model)
    found += check_circular_buffers(model)
    found += check_work_split(model)
    return sorted(found, key=lambda d: (not d.is_error, d.file or "", d.line or 0, d.code))
