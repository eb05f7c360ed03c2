"""Budgets: the limits a scope has (config, frontmatter, the plan's windows) and where each stands."""
