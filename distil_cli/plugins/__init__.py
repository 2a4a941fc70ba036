"""Plugins: hook specifications, the registry, the built-in plugin and model families.

Plugin authors import what they need from ``distil_cli`` itself (see docs/plugins.md).
"""
