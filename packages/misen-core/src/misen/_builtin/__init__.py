"""Plugins that ship with misen-core, registered through the same hooks as any other plugin."""
