"""Data layer: input validation and cleaning, processed tables, splits, id encoders, demo/real datasets.

Processed-table contract: `tables.load_items` / `tables.load_interactions`; splits: `splits.load_split`;
encoders: `encoders.IdEncoder`, `encoders.load_encoders`; numeric features: `numeric.NumericScaler`.
"""
