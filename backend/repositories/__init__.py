"""Repositories: the queries. They flush but never commit.

Every module of the package is imported here, so a repository declared for a
model in `backend/repositories/<thing>.py` is what `UnitOfWork.repo(Model)`
returns, whoever imported what first.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
