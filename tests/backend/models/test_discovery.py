"""Models and services are discovered: a new module is seen without editing any list or `__init__`.

The "new module" tests run in a copy of the `backend` package, in a fresh
interpreter, so the extra tables never reach this run's metadata (the
migrations test compares it with the database).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import backend.models
from backend.db.base import Base
from backend.models import Tag
from backend.services.base import CrudService
from backend.services.registry import DuplicateService, collect_services

ROOT = Path(__file__).resolve().parents[3]

SUPPLIER_MODULE = """
from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base
from backend.db.mixins import BigIntId, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from backend.db.policy import Policy


class Supplier(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    policy = Policy(group="catalog", pii={"email"})

    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254), default="")


class Shipment(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    supplier_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("supplier.id"))
    weight: Mapped[float] = mapped_column(Numeric(6, 1))
"""

SUPPLIER_SERVICE = """
from backend.models.supplier import Supplier
from backend.services.base import CrudService


class SupplierService(CrudService):
    model = Supplier
"""

PROBE = """
import json, sys
import backend, backend.models
from backend.auth.permissions import admin_models, permission_specs
from backend.db.base import Base
from backend.services.registry import service_for, soft_deletable_tables

shipments = service_for("shipment")
print(json.dumps({
    "package": backend.__file__,
    "exported": hasattr(backend.models, "Supplier") and "Shipment" in backend.models.__all__,
    "tables": sorted(Base.metadata.tables),
    "admin": [model.__name__ for model in admin_models()],
    "codenames": sorted(spec.codename for spec in permission_specs() if spec.table == "supplier"),
    "supplier_service": service_for("supplier").__qualname__,
    "shipment_service": [shipments.__name__, shipments.__module__],
    "shipment_fields": sorted(shipments.create_schema.model_fields),
    "trash": soft_deletable_tables(),
}))
"""


def test_every_module_of_the_package_is_imported() -> None:
    package = Path(backend.models.__file__).parent
    modules = {f"backend.models.{path.stem}" for path in package.glob("*.py") if path.stem != "__init__"}
    assert modules <= set(sys.modules)
    mapped = {mapper.class_.__module__ for mapper in Base.registry.mappers}
    assert {module for module in mapped if not module.startswith("tests.")} <= modules


def test_a_new_model_module_reaches_metadata_permissions_services_and_the_trash(tmp_path: Path) -> None:
    copy = tmp_path / "backend"
    shutil.copytree(ROOT / "backend", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "models" / "supplier.py").write_text(textwrap.dedent(SUPPLIER_MODULE))
    (copy / "services" / "supplier.py").write_text(textwrap.dedent(SUPPLIER_SERVICE))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["package"].startswith(str(tmp_path))  # the copy, not the project
    assert found["exported"]
    assert {"supplier", "shipment"} <= set(found["tables"])
    assert {"Supplier", "Shipment"} <= set(found["admin"])
    assert "supplier.view_pii" in found["codenames"] and "supplier.purge" in found["codenames"]
    assert found["supplier_service"] == "SupplierService"  # declared in a new module of services/
    assert found["shipment_service"] == ["ShipmentService", "backend.services.registry"]  # generated
    assert found["shipment_fields"] == ["supplier_id", "weight"]
    assert {"supplier", "shipment"} <= set(found["trash"])


def test_two_services_for_one_model_are_refused() -> None:
    def module_with_service(name: str) -> types.ModuleType:
        module = types.ModuleType(name)
        service = type("TagService", (CrudService,), {"model": Tag, "__module__": name})
        module.TagService = service  # type: ignore[attr-defined]  # a module built for the test
        return module

    first = module_with_service("backend.services.first")
    assert collect_services([first]) == {Tag: first.TagService}  # type: ignore[attr-defined]  # built above
    with pytest.raises(DuplicateService, match=r"first\.TagService and .*second\.TagService both serve Tag"):
        collect_services([first, module_with_service("backend.services.second")])


def test_imported_and_abstract_service_classes_are_not_collected() -> None:
    module = types.ModuleType("backend.services.elsewhere")
    module.CrudService = CrudService  # type: ignore[attr-defined]  # imported base: no model, other module
    module.Base = type("Base", (CrudService,), {"__module__": module.__name__})  # type: ignore[attr-defined]
    assert collect_services([module]) == {}
