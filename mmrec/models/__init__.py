"""The two-tower model, its inputs, the item-item model and the one scoring path (scoring.Scorer)."""

import warnings

from mmrec.models.inputs import ItemInputs, build_item_inputs
from mmrec.models.towers import ItemTower, ModelDims, UserTower
from mmrec.models.two_tower import BatchOutput, TwoTowerModel

# The item-item and transition models hold sparse CSR weights; torch flags the layout as beta on every
# construction, which would be the only raw Python output of evaluate and recommend.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)

__all__ = ["BatchOutput", "ItemInputs", "ItemTower", "ModelDims", "TwoTowerModel", "UserTower", "build_item_inputs"]
