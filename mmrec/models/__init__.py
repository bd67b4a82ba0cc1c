"""The two-tower model, its inputs, the item-item model and the one scoring path (scoring.Scorer)."""

from mmrec.models.inputs import ItemInputs, build_item_inputs
from mmrec.models.towers import ItemTower, ModelDims, UserTower
from mmrec.models.two_tower import BatchOutput, TwoTowerModel

__all__ = ["BatchOutput", "ItemInputs", "ItemTower", "ModelDims", "TwoTowerModel", "UserTower", "build_item_inputs"]
