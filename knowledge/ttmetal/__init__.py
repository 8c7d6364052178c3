"""TT-Metal knowledge: API tables by version (data), a reader of project sources, and static checks."""

from knowledge.ttmetal.check import check_project
from knowledge.ttmetal.project import FileRole, Project, pack, unpack
from knowledge.ttmetal.tables import ApiTables, load_tables

__all__ = ["ApiTables", "FileRole", "Project", "check_project", "load_tables", "pack", "unpack"]
