"""A generic, typed repository. It flushes (to get ids and surface constraint errors) but never
commits: the request's unit of work owns the transaction."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.core.read_cache import mark_changed
from app.models.base import Base
from app.schemas.page import SortKey

ModelT = TypeVar("ModelT", bound=Base)
CreateT = TypeVar("CreateT", bound=BaseModel)
UpdateT = TypeVar("UpdateT", bound=BaseModel)
# Filter names and sort keys come from whitelists, so shapes are few; the bound is for safety.
MAX_PREBUILT_PAGE_STATEMENTS = 256


class CRUDBase(Generic[ModelT, CreateT, UpdateT]):
    """Persistence for one model.

    ``sort_columns`` whitelists what a list may be ordered by (keys are the public names);
    ``search_columns`` are matched by ``get_multi(search=...)``; ``read_scopes`` names the
    read-cache scopes (app.crud.read_scopes) a written row changes: every write method marks
    them, so no caller can forget to.
    """

    def __init__(
        self,
        model: type[ModelT],
        *,
        sort_columns: Mapping[str, InstrumentedAttribute[Any]],
        search_columns: Sequence[InstrumentedAttribute[str] | InstrumentedAttribute[str | None]],
        read_scopes: Callable[[Any], Iterable[str]] | None = None,
    ) -> None:
        self.model = model
        self.read_scopes = read_scopes
        self.sort_columns = dict(sort_columns)
        self.search_columns = tuple(search_columns)
        # Built once: constructing a select() per call costs more than running the cached SQL.
        self._get_by_id = select(model).where(model.id == bindparam("id"))
        self._table = cast(Table, model.__table__)
        self._insert_returning = insert(self._table).returning(*self._table.c)
        self._page_statements: dict[tuple[tuple[str, ...], tuple[SortKey, ...]], Select[Any]] = {}

    def get(self, session: Session, id: int) -> ModelT | None:
        return session.execute(self._get_by_id, {"id": id}).scalar_one_or_none()

    def get_multi(
        self,
        session: Session,
        *,
        filters: Mapping[str, object] | None = None,
        search: str | None = None,
        sort: Sequence[SortKey] = (),
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[Sequence[Row[Any]], int]:
        """One page of rows (the table's columns, no entities: a page is only read) and the
        total matching the filters (``None`` values are ignored)."""
        filter_names, params = _bound_filters(filters)
        params.update(offset=offset, limit=limit)
        if search:
            stmt = self._page_statement(filter_names, tuple(sort), search=search)
        else:
            # Built once per shape (filters and order), run with bound values.
            stmt = self._prebuilt_page_statement(filter_names, tuple(sort))
        rows = session.execute(stmt, params).all()
        if rows:
            return rows, int(rows[0].total)
        # Past the last page the window has no row to report the total on.
        return [], self.count(session, filters=filters, search=search) if offset else 0

    def _page_statement(
        self, filter_names: tuple[str, ...], sort: tuple[SortKey, ...], *, search: str | None
    ) -> Select[Any]:
        conditions = self._conditions(filter_names, search)
        total_column = func.count().over().label("total")
        return (
            select(*self._table.c, total_column)
            .where(*conditions)
            .order_by(*self._order_by(sort))
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
        )

    def _prebuilt_page_statement(
        self, filter_names: tuple[str, ...], sort: tuple[SortKey, ...]
    ) -> Select[Any]:
        key = (filter_names, sort)
        stmt = self._page_statements.get(key)
        if stmt is None:
            stmt = self._page_statement(filter_names, sort, search=None)
            if len(self._page_statements) < MAX_PREBUILT_PAGE_STATEMENTS:
                self._page_statements[key] = stmt
        return stmt

    def count(
        self,
        session: Session,
        *,
        filters: Mapping[str, object] | None = None,
        search: str | None = None,
    ) -> int:
        filter_names, params = _bound_filters(filters)
        conditions = self._conditions(filter_names, search)
        stmt = select(func.count()).select_from(self.model).where(*conditions)
        return session.scalar(stmt, params) or 0

    def create(
        self,
        session: Session,
        *,
        obj_in: CreateT,
        exclude: frozenset[str] = frozenset(),
        **extra: Any,
    ) -> ModelT:
        """Insert ``obj_in`` (less the ``exclude`` fields) plus ``extra`` column values."""
        db_obj = self.model(**obj_in.model_dump(exclude=set(exclude)), **extra)
        session.add(db_obj)
        session.flush()  # assigns the id; constraint violations surface here
        self._written(session, db_obj)
        return db_obj

    def insert(self, session: Session, *, obj_in: CreateT, **extra: Any) -> Row[Any]:
        """Insert ``obj_in`` plus ``extra`` column values and return the new row as stored (id
        and column defaults included): one ``INSERT ... RETURNING`` and no entity, for callers
        that only answer with the row. A constraint violation raises here, as a flush would."""
        values = {**obj_in.model_dump(), **extra}
        row = session.execute(self._insert_returning, values).one()
        self._written(session, row)
        return row

    def create_many(
        self, session: Session, *, objs_in: Sequence[CreateT], **extra: Any
    ) -> list[ModelT]:
        """Insert many rows with one flush (SQLAlchemy batches the INSERTs)."""
        db_objs = [self.model(**obj_in.model_dump(), **extra) for obj_in in objs_in]
        session.add_all(db_objs)
        session.flush()
        self._written(session, *db_objs)
        return db_objs

    def update(
        self, session: Session, *, db_obj: ModelT, obj_in: UpdateT | Mapping[str, Any]
    ) -> ModelT:
        changes = obj_in.model_dump(exclude_unset=True) if isinstance(obj_in, BaseModel) else obj_in
        for field, value in changes.items():
            setattr(db_obj, field, value)
        session.flush()
        self._written(session, db_obj)
        return db_obj

    def delete(self, session: Session, *, db_obj: ModelT) -> None:
        session.delete(db_obj)
        session.flush()
        self._written(session, db_obj)

    def _written(self, session: Session, *rows: Any) -> None:
        if self.read_scopes is not None:
            mark_changed(session, {scope for row in rows for scope in self.read_scopes(row)})

    def _conditions(
        self, filter_names: tuple[str, ...], search: str | None
    ) -> list[ColumnElement[bool]]:
        """Equality on each filter (values bound by name, see ``_bound_filters``) and the search;
        the search text is inlined, because autoescape needs the literal."""
        conditions: list[ColumnElement[bool]] = [
            getattr(self.model, name) == bindparam(f"filter_{name}") for name in filter_names
        ]
        if search:
            conditions.append(
                or_(*(column.icontains(search, autoescape=True) for column in self.search_columns))
            )
        return conditions

    def _order_by(self, sort: Sequence[SortKey]) -> list[ColumnElement[Any]]:
        order: list[ColumnElement[Any]] = []
        for key in sort:
            column = self.sort_columns[key.field]
            order.append(column.desc() if key.descending else column.asc())
        if not any(key.field == "id" for key in sort):
            order.append(self.model.id.asc())  # a total order: pages never overlap or skip
        return order


def _bound_filters(
    filters: Mapping[str, object] | None,
) -> tuple[tuple[str, ...], dict[str, object]]:
    """The names of the filters that apply (``None`` values are ignored) and their bound
    values, as ``_conditions`` names them."""
    active = {name: value for name, value in (filters or {}).items() if value is not None}
    return tuple(active), {f"filter_{name}": value for name, value in active.items()}
