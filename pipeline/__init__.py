"""credit-repair: the district's market-entity credit repair (信用修复) pipeline."""

__version__ = "0.1.0"
