"""Engines: one interface (``base.Engine``), one module per implementation."""
