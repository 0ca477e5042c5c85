"""Run one of the server's SQL store methods on an empty database: what it refuses before any
row matters is the server's answer; what it needs rows for is server state.

The store classes (mlflow/store/tracking/sqlalchemy_store.py, mlflow/store/model_registry/
sqlalchemy_store.py) are used without their constructors (no migrations, no server database),
bound to an in-memory SQLite database holding MLflow's tables and, as on every server, the
Default experiment (id 0) alone; its sessions never commit. Their methods then run MLflow's own
validators and parsers in the server's order; helpers.search_checks and helpers.registry_checks
say which method each RPC's handler calls.
"""

from __future__ import annotations

import functools
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from mlflow.exceptions import MlflowException

TRACKING, REGISTRY = "tracking", "registry"
#: Error codes that say "this row is (not) there": server state decides them, not the request.
STATE_CODES = ("RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "NOT_FOUND",
               "ALREADY_EXISTS")
#: What a handler passes its store, per RPC: (store, method, parsed message -> kwargs).
Call = tuple[str, str, Callable[[Any], dict[str, Any]]]
_LOCK = threading.Lock()


@functools.cache
def stores() -> dict[str, Any]:
    """The tracking and registry stores on an in-memory SQLite database holding the Default
    experiment only (the kit's server stores in SQLite too); sessions roll back, never commit."""
    import sqlalchemy
    from sqlalchemy.pool import StaticPool
    from sqlalchemy.schema import CreateTable

    with warnings.catch_warnings():  # the registry store's mappers use a deprecated loader
        warnings.simplefilter("ignore", sqlalchemy.exc.SADeprecationWarning)
        from mlflow.store.db.base_sql_model import Base
        from mlflow.store.db.utils import _get_managed_session_maker
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

    class _NeverCommits(sqlalchemy.orm.Session):
        def commit(self) -> None:
            self.rollback()

    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool,
                                      connect_args={"check_same_thread": False})
    with engine.begin() as conn:  # tables only: no rows are ever read, indexes do not matter
        for table in Base.metadata.sorted_tables:
            conn.execute(CreateTable(table))
    maker = _get_managed_session_maker(
        sqlalchemy.orm.sessionmaker(bind=engine, class_=_NeverCommits), "sqlite")
    out = {}
    for name, cls in ((TRACKING, Tracking), (REGISTRY, Registry)):
        store = object.__new__(cls)
        store.engine, store.db_type, store.ManagedSessionMaker = engine, "sqlite", maker
        store.artifact_root_uri = "mlflow-artifacts:/"  # the kit server's --default-artifact-root
        out[name] = store
    with sqlalchemy.orm.Session(engine) as session:  # every server has the Default experiment
        out[TRACKING]._create_default_experiment(session)
        session.commit()
    return out


#: describe(sim, exc, raised-in function names, top first) -> (finding id, message, fix)
Describe = Callable[[Any, MlflowException, list[str]], tuple[str, str, str]]


def run(sim: Any, call: Call, describe: Describe) -> str:
    """Call the store method as the handler does. Its MlflowException is the answer, unless it
    only says a row is missing or taken (then server state decides: a "state" finding). Returns
    the method's name for the caller's own finding when it passes."""
    from helpers.preflight_advice import CRASH

    store_name, method, args = call
    store = stores()[store_name]
    try:
        kwargs = args(sim.message)
    except Exception as exc:  # noqa: BLE001 - a request field this MLflow's proto lacks
        raise sim.not_modelled(f"what the handler passes {method} ({exc})") from None
    where = f"{type(store).__module__.replace('.', '/')}.py::SqlAlchemyStore.{method}"
    try:
        with _LOCK:  # one in-memory database, one connection
            getattr(store, method)(**kwargs)
        return where
    except MlflowException as exc:
        crashed = exc.__cause__ if isinstance(exc.__cause__, Exception) else None
        if exc.error_code in STATE_CODES or type(crashed).__module__.startswith("sqlalchemy"):
            raise sim.fail(None, "state", where, "Valid as far as the store checks before it "
                           f"looks rows up (on an empty database it then says {exc.message!r}): "
                           "what this server holds decides the answer.",
                           severity="info") from None
        raised = crashed if exc.error_code == "INTERNAL_ERROR" and crashed else exc
        frames = [f for f in traceback.extract_tb(raised.__traceback__)
                  if "/mlflow/" in f.filename and not f.filename.endswith("db/utils.py")]
        if frames[1:]:
            inner = frames[-1]
            where += " -> mlflow/" + inner.filename.rpartition("/mlflow/")[2] + "::" + inner.name
        id_, message, fix = describe(sim, exc, [f.name for f in frames[1:]])
        if raised is not exc:
            message = (f"The store crashes ({type(raised).__name__}) and the server answers "
                       f"500 INTERNAL_ERROR: {message}")
        raise sim.fail(exc.get_http_status_code(), id_, where, message, fix, said=exc.message,
                       code=exc.error_code) from None
    except Exception as exc:  # outside the store's session: Flask's 500 page
        if len(traceback.extract_tb(exc.__traceback__)) < 2:  # the call itself: not MLflow's
            raise sim.not_modelled(f"{method} of this MLflow ({type(exc).__name__})") from None
        raise sim.fail(500, "server-error", where, f"{CRASH}: {type(exc).__name__}: {exc}.",
                       "Change the value the message names.") from None


def error_of(call: Call, message: Any) -> str | None:
    """The message of the MlflowException the store method raises for `message` (None: it
    raises none): for trying a rewritten request, with no finding."""
    store_name, method, args = call
    try:
        with _LOCK:
            getattr(stores()[store_name], method)(**args(message))
    except MlflowException as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - any other failure is an answer too
        return repr(exc)
    return None
