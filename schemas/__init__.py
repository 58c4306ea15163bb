"""Parquet schemas: the single source of truth for every table cropaudit writes."""
