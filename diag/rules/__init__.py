"""Diagnosis rules: one module per stable code (SPEC §4), listed explicitly in `ALL_RULES`."""
