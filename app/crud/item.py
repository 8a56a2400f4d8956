from app.crud.base import CRUDBase
from app.models.item import Item
from app.schemas.item import ItemCreate, ItemUpdate

item_crud = CRUDBase[Item, ItemCreate, ItemUpdate](
    Item,
    sort_columns={
        "id": Item.id,
        "title": Item.title,
        "created_at": Item.created_at,
        "updated_at": Item.updated_at,
    },
    search_columns=(Item.title, Item.description),
)
