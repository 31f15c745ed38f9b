"""Snapshot sources: file (CSV/XLSX/JSON) and HTTP adapters, and header-to-field mapping."""
