from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.crud.base import CRUDBase
from app.crud.read_scopes import written_item
from app.crud.user import TOKEN_STATE_COLUMNS, TokenState
from app.models.item import Item
from app.models.user import User
from app.schemas.item import ItemCreate, ItemUpdate

# The viewer's token state and the item in one round trip; built once, run with bound ids.
_VIEWER_AND_ITEM = (
    select(*TOKEN_STATE_COLUMNS, Item)
    .outerjoin(Item, Item.id == bindparam("item_id"))
    .where(User.id == bindparam("viewer_id"))
)


class ItemCRUD(CRUDBase[Item, ItemCreate, ItemUpdate]):
    def get_with_viewer(
        self, session: Session, *, item_id: int, viewer_id: int
    ) -> tuple[TokenState | None, Item | None]:
        """The viewer's token state (``UserCRUD.get_token_state``) and the item (either may
        be missing)."""
        params = {"item_id": item_id, "viewer_id": viewer_id}
        row = session.execute(_VIEWER_AND_ITEM, params).first()
        if row is None:
            return None, None  # no such viewer: the caller's token is refused anyway
        viewer_id_found, role, is_active, token_key, item = row
        return TokenState(viewer_id_found, role, is_active, token_key), item


item_crud = ItemCRUD(
    Item,
    sort_columns={
        "id": Item.id,
        "title": Item.title,
        "created_at": Item.created_at,
        "updated_at": Item.updated_at,
    },
    search_columns=(Item.title, Item.description),
    read_scopes=written_item,
)
